module chatbox

go 1.26.0

require (
	github.com/BurntSushi/toml v1.5.0
	github.com/ergochat/irc-go v0.7.0
	github.com/ncruces/go-sqlite3 v0.37.0
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
	golang.org/x/text v0.43.0
	periph.io/x/conn/v3 v3.7.3
	periph.io/x/host/v3 v3.8.5
)

require (
	github.com/ncruces/go-sqlite3-wasm/v6 v6.5.35401 // indirect
	github.com/ncruces/julianday v1.0.0 // indirect
)
