package gql

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Conn is one keep-alive HTTP/1.1 connection to the endpoint, for one
// goroutine at a time. It writes each request and reads its answer on the
// caller's goroutine, where a Client's transport hands both to goroutines of
// its own: a load generator whose workers each own a Conn times the server's
// answer, not its own scheduling, and spends less of the machine it shares
// with the server. Requests and answers are written and read by net/http.
type Conn struct {
	url  *url.URL
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	// used is when the connection last carried an answer.
	used time.Time
}

// idleCheck is how long a connection sits unused before Do makes sure the
// server has not closed it (a read of at most a millisecond).
const idleCheck = time.Second

// Dial opens a connection to the endpoint rawURL.
func Dial(ctx context.Context, rawURL string) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("graphql: endpoint %q is not an http:// URL", rawURL)
	}
	c := &Conn{url: u}
	return c, c.dial(ctx)
}

// DialAll opens n connections to the endpoint rawURL, one for each worker.
func DialAll(ctx context.Context, rawURL string, n int) ([]*Conn, error) {
	conns := make([]*Conn, 0, n)
	for range n {
		c, err := Dial(ctx, rawURL)
		if err != nil {
			CloseAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// CloseAll closes the connections.
func CloseAll(conns []*Conn) {
	for _, c := range conns {
		c.Close()
	}
}

func (c *Conn) dial(ctx context.Context) error {
	conn, err := (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", c.url.Host)
	if err != nil {
		return fmt.Errorf("graphql: connect to %s: %w", c.url.Host, err)
	}
	c.conn, c.br, c.bw = conn, bufio.NewReader(conn), bufio.NewWriter(conn)
	return nil
}

// Close closes the connection; the next Do opens another.
func (c *Conn) Close() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// Do is Client.Do on this connection. A connection the server closed while
// it sat idle is opened again before the request is sent; one that fails
// during a request is closed, and the next Do opens another.
func (c *Conn) Do(ctx context.Context, token, query string, vars any, out any) error {
	body, err := encodeRequest(query, vars)
	if err != nil {
		return err
	}
	status, raw, err := c.Post(ctx, token, body)
	if err != nil {
		return err
	}
	return decodeAnswer(status, raw, out)
}

// Post sends an encoded request body as Do does and returns the answer's
// HTTP status and bytes as they came, for a caller that judges them itself.
func (c *Conn) Post(ctx context.Context, token string, body []byte) (int, []byte, error) {
	req, err := newRequest(ctx, c.url.String(), token, body)
	if err != nil {
		return 0, nil, err
	}
	if c.conn == nil || (time.Since(c.used) > idleCheck && c.idleClosed()) {
		c.Close()
		if err := c.dial(ctx); err != nil {
			return 0, nil, err
		}
	}
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(d)
	} else {
		c.conn.SetDeadline(time.Now().Add(60 * time.Second))
	}
	status, raw, keep, err := c.roundTrip(req)
	if err != nil || !keep {
		c.Close()
	}
	if err != nil {
		return 0, nil, err
	}
	c.used = time.Now()
	return status, raw, nil
}

// roundTrip writes req and reads its answer; keep is false when the server
// closes the connection after it.
func (c *Conn) roundTrip(req *http.Request) (status int, raw []byte, keep bool, err error) {
	if err := req.Write(c.bw); err != nil {
		return 0, nil, false, fmt.Errorf("graphql: post: %w", err)
	}
	if err := c.bw.Flush(); err != nil {
		return 0, nil, false, fmt.Errorf("graphql: post: %w", err)
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return 0, nil, false, fmt.Errorf("graphql: read answer: %w", err)
	}
	defer resp.Body.Close()
	if raw, err = io.ReadAll(resp.Body); err != nil {
		return 0, nil, false, fmt.Errorf("graphql: read answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, raw, !resp.Close, nil
}

// idleClosed reports whether the server closed the connection while it sat
// idle: a closed connection reads at once, an open idle one times out.
func (c *Conn) idleClosed() bool {
	if c.br.Buffered() > 0 {
		return true // bytes nobody asked for: the connection is out of step
	}
	// A deadline already past would fail the read before it is tried.
	c.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := c.br.Peek(1)
	c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}
