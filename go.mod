module github.com/mercury-broker/mercury

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/go-chi/chi/v5 v5.5.0
	go.uber.org/goleak v1.3.0
	golang.org/x/term v0.47.0
)

require golang.org/x/sys v0.49.0 // indirect
