// Package bosun is a thin layer over bosun's generated gRPC clients
// (package bosunv1): Connect with an address and an optional token and TLS,
// RecordLessonQuietly for callers on their own hot paths, and Watch, which
// follows the change log across disconnects and server restarts.
//
// Every service's generated client is a field of Client, so any RPC is one
// call away:
//
//	client, err := bosun.Connect("127.0.0.1:7070", bosun.WithToken(token))
//	...
//	stats, err := client.Lessons.GetLessonStats(ctx, &bosunv1.GetLessonStatsRequest{})
package bosun

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	bosunv1 "github.com/bosun-dev/bosun/clients/go/gen/bosun/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// DefaultQuietTimeout is how long RecordLessonQuietly waits for bosun.
const DefaultQuietTimeout = 2 * time.Second

// Client is a connection to bosun with a client for every service.
type Client struct {
	Lessons    bosunv1.LessonsClient
	Sessions   bosunv1.SessionsClient
	Tasks      bosunv1.TasksClient
	Reconciler bosunv1.ReconcilerClient
	Processors bosunv1.ProcessorsClient
	Events     bosunv1.EventsClient
	Health     healthpb.HealthClient

	conn         *grpc.ClientConn
	logger       *slog.Logger
	quietTimeout time.Duration
}

type options struct {
	token        string
	tls          *tls.Config
	logger       *slog.Logger
	quietTimeout time.Duration
	dialOptions  []grpc.DialOption
}

// An Option configures Connect.
type Option func(*options)

// WithToken sends `authorization: Bearer <token>` on every call. bosun's
// tokens are configured in its [[auth.tokens]]; without tokens configured,
// bosun needs none.
func WithToken(token string) Option {
	return func(o *options) { o.token = token }
}

// WithTLS connects over TLS with config (nil: the system's roots). bosun
// itself serves plaintext; use this behind a TLS-terminating proxy.
func WithTLS(config *tls.Config) Option {
	return func(o *options) {
		if config == nil {
			config = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = config
	}
}

// WithLogger sets where RecordLessonQuietly and Watch log (default
// slog.Default()).
func WithLogger(logger *slog.Logger) Option {
	return func(o *options) { o.logger = logger }
}

// WithQuietTimeout sets RecordLessonQuietly's deadline (default
// DefaultQuietTimeout).
func WithQuietTimeout(timeout time.Duration) Option {
	return func(o *options) { o.quietTimeout = timeout }
}

// WithDialOptions adds grpc.DialOptions (interceptors, keepalive, ...).
func WithDialOptions(dialOptions ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, dialOptions...) }
}

// Connect prepares a connection to bosun at address ("host:port"). Like
// grpc.NewClient it does not wait for the server: calls connect lazily and
// fail with UNAVAILABLE while it is unreachable.
func Connect(address string, opts ...Option) (*Client, error) {
	o := options{logger: slog.Default(), quietTimeout: DefaultQuietTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	transport := insecure.NewCredentials()
	if o.tls != nil {
		transport = credentials.NewTLS(o.tls)
	}
	dialOptions := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if o.token != "" {
		dialOptions = append(dialOptions, grpc.WithPerRPCCredentials(bearerToken{
			token:      o.token,
			requireTLS: o.tls != nil,
		}))
	}
	dialOptions = append(dialOptions, o.dialOptions...)
	conn, err := grpc.NewClient(address, dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("bosun: connect to %s: %w", address, err)
	}
	return &Client{
		Lessons:      bosunv1.NewLessonsClient(conn),
		Sessions:     bosunv1.NewSessionsClient(conn),
		Tasks:        bosunv1.NewTasksClient(conn),
		Reconciler:   bosunv1.NewReconcilerClient(conn),
		Processors:   bosunv1.NewProcessorsClient(conn),
		Events:       bosunv1.NewEventsClient(conn),
		Health:       healthpb.NewHealthClient(conn),
		conn:         conn,
		logger:       o.logger,
		quietTimeout: o.quietTimeout,
	}, nil
}

// Conn is the underlying connection, for services of your own.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; open Watchers end.
func (c *Client) Close() error { return c.conn.Close() }

// bearerToken sends the token on every call. Over TLS it insists on a secure
// transport; over plaintext (bosun on loopback) it does not.
type bearerToken struct {
	token      string
	requireTLS bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.requireTLS }

// RecordLessonQuietly records lesson and never fails: within the quiet
// timeout (see WithQuietTimeout), it returns bosun's answer, or nil after
// logging a warning when anything went wrong (bosun unreachable, a refusal,
// the deadline). For callers on their own hot paths, whose work must not
// depend on the journal.
func (c *Client) RecordLessonQuietly(ctx context.Context, lesson *bosunv1.Lesson) *bosunv1.RecordLessonResponse {
	ctx, cancel := context.WithTimeout(ctx, c.quietTimeout)
	defer cancel()
	response, err := c.Lessons.RecordLesson(ctx, &bosunv1.RecordLessonRequest{Lesson: lesson})
	if err != nil {
		c.logger.Warn("bosun: lesson not recorded",
			"lesson_type", lesson.GetLessonType(),
			"work_item_id", lesson.GetWorkItemId(),
			"error", err)
		return nil
	}
	return response
}
