package bus

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedServer is a NATS server with JetStream running inside this process,
// for the native stack and tests.
type EmbeddedServer struct {
	srv *server.Server
}

// StartEmbedded starts a JetStream-enabled NATS server storing its streams under
// storeDir and listening on listen ("127.0.0.1:4222"; port 0 picks a free one).
func StartEmbedded(storeDir, listen string) (*EmbeddedServer, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "ownyou-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 15s (is %s in use?)", listen)
	}
	return &EmbeddedServer{srv: srv}, nil
}

// URL is the client URL of the server.
func (e *EmbeddedServer) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped.
func (e *EmbeddedServer) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
