// Package chatbox holds what the repository's root gives the program: the
// settings example, whose comments the web admin shows as each setting's
// help.
package chatbox

import _ "embed"

// ExampleSettings is chatbox.example.toml: every setting, its default and
// what it does.
//
//go:embed chatbox.example.toml
var ExampleSettings string
