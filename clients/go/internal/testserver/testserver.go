// Package testserver runs a real `bosun serve` for the client's tests: on
// 127.0.0.1:0 with a fresh data dir, its address read from the JSON log line
// "bosun serving", ready once health says SERVING. The binary is $TEST_BOSUN_BIN,
// else target/debug/bosun of the repository (`cargo build` makes it).
package testserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const startTimeout = 30 * time.Second

// Server is one bosun process (and, after Restart, its successor on the same
// address and data dir).
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr    string
	DataDir string

	t      testing.TB
	config string
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *logTail
}

// Options configure Start.
type Options struct {
	// Config is the TOML configuration file's content (empty: none).
	Config string
	// Env adds environment variables, e.g. "BOSUN_EVENTS__RETENTION=0s".
	Env []string
}

// Start runs bosun and waits until it serves; the test's cleanup stops it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{DataDir: filepath.Join(dir, "data"), t: t, env: opts.Env}
	if opts.Config != "" {
		s.config = filepath.Join(dir, "bosun.toml")
		if err := os.WriteFile(s.config, []byte(opts.Config), 0o600); err != nil {
			t.Fatalf("write config: %v", err)
		}
	}
	s.launch("127.0.0.1:0")
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts bosun down with SIGTERM and waits until it exited.
func (s *Server) Stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(startTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("bosun did not stop on SIGTERM; log:\n%s", s.log)
	}
	s.cmd = nil
}

// Restart stops bosun and starts it again on the same address and data dir.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.launch(s.Addr)
}

func (s *Server) launch(addr string) {
	s.t.Helper()
	args := []string{"serve", "--data-dir", s.DataDir, "--grpc-addr", addr, "--http-addr", "127.0.0.1:0", "--log-format", "json"}
	if s.config != "" {
		args = append(args, "--config", s.config)
	}
	cmd := exec.Command(binary(s.t), args...)
	cmd.Env = append(append(os.Environ(), "RUST_LOG=info"), s.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		s.t.Fatalf("stderr pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start bosun: %v", err)
	}
	s.cmd, s.exited, s.log = cmd, make(chan struct{}), &logTail{}
	bound := make(chan string, 1)
	go s.log.follow(stderr, bound)
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(s.exited)

	select {
	case s.Addr = <-bound:
	case <-s.exited:
		s.cmd = nil
		s.t.Fatalf("bosun exited before serving; log:\n%s", s.log)
	case <-time.After(startTimeout):
		s.t.Fatalf("bosun did not log its address; log:\n%s", s.log)
	}
	s.waitServing()
}

// waitServing blocks until the health service answers SERVING.
func (s *Server) waitServing() {
	s.t.Helper()
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.t.Fatalf("health connection: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		s.t.Fatalf("health watch: %v", err)
	}
	for {
		response, err := watch.Recv()
		if err != nil {
			s.t.Fatalf("bosun never became SERVING: %v; log:\n%s", err, s.log)
		}
		if response.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
	}
}

// binary is $TEST_BOSUN_BIN, else <repo>/target/debug/bosun.
func binary(t testing.TB) string {
	if path := os.Getenv("TEST_BOSUN_BIN"); path != "" {
		return path
	}
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "target", "debug", "bosun")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no bosun binary at %s: run `cargo build` at the repository root, or set TEST_BOSUN_BIN", path)
	}
	return path
}

// logTail keeps bosun's stderr for failure messages and reports the address
// from the "bosun serving" line.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) follow(stderr io.Reader, bound chan<- string) {
	scanner := bufio.NewScanner(stderr)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		line := scanner.Text()
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
		var entry struct {
			Fields struct {
				Message  string `json:"message"`
				GrpcAddr string `json:"grpc_addr"`
			} `json:"fields"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Fields.Message == "bosun serving" {
			select {
			case bound <- entry.Fields.GrpcAddr:
			default:
			}
		}
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("  %s", strings.Join(l.lines, "\n  "))
}
