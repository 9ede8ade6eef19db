module github.com/mercury-broker/mercury

go 1.26

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
