module gokrazy/build/chatbox

go 1.26

require (
	github.com/gokrazy/gokrazy v0.0.0-20260418085648-c38c3134b8a7 // indirect
	golang.org/x/sys v0.31.0 // indirect
)
