// Package gql is the benchmark's GraphQL-over-HTTP client: JSON POSTs over a
// fixed pool of keep-alive connections, errors read by extensions.code.
package gql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Doer sends GraphQL operations: a Client, or a Conn.
type Doer interface {
	Do(ctx context.Context, token, query string, vars any, out any) error
}

// Client posts GraphQL operations to one endpoint.
type Client struct {
	URL  string
	HTTP *http.Client
}

// New returns a client that keeps exactly conns connections to the server:
// every request beyond waits for a free connection rather than opening one,
// so the server sees the concurrency the benchmark claims.
func New(url string, conns int) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	return &Client{URL: url, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// Close closes the idle connections.
func (c *Client) Close() { c.HTTP.CloseIdleConnections() }

// Error is the first GraphQL error of an answer.
type Error struct {
	Message string
	// Code is extensions.code; empty when the server gave none.
	Code string
	// Status is the HTTP status of the answer.
	Status int
}

func (e *Error) Error() string {
	return fmt.Sprintf("graphql: %s (code %q, HTTP %d)", e.Message, e.Code, e.Status)
}

// CodeOf returns the GraphQL error code of err, "" when err is not a GraphQL error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

type request struct {
	Query     string `json:"query"`
	Variables any    `json:"variables,omitempty"`
}

type answer struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
}

// Do sends query with vars, as the bearer of token when token is not empty,
// and decodes the answer's data into out. An answer with errors returns the
// first as *Error; a transport failure or an answer that is not GraphQL
// returns a plain error.
func (c *Client) Do(ctx context.Context, token, query string, vars any, out any) error {
	body, err := encodeRequest(query, vars)
	if err != nil {
		return err
	}
	req, err := newRequest(ctx, c.URL, token, body)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("graphql: post: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body) // read to the end, so the connection is reused
	if err != nil {
		return fmt.Errorf("graphql: read answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return decodeAnswer(resp.StatusCode, raw, out)
}

// newRequest is the POST of body to url, as the bearer of token when token
// is not empty.
func newRequest(ctx context.Context, url, token string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("graphql: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// encodeRequest is a GraphQL-over-HTTP request body.
func encodeRequest(query string, vars any) ([]byte, error) {
	body, err := json.Marshal(request{Query: query, Variables: vars})
	if err != nil {
		return nil, fmt.Errorf("graphql: encode request: %w", err)
	}
	return body, nil
}

// decodeAnswer reads a GraphQL answer with HTTP status into out, or its first error.
func decodeAnswer(status int, raw []byte, out any) error {
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("graphql: answer is not GraphQL (HTTP %d): %.200q", status, raw)
	}
	if len(a.Errors) > 0 {
		e := a.Errors[0]
		return &Error{Message: e.Message, Code: e.Extensions.Code, Status: status}
	}
	if len(a.Data) == 0 || string(a.Data) == "null" {
		return fmt.Errorf("graphql: answer has neither data nor errors (HTTP %d)", status)
	}
	if out != nil {
		if err := json.Unmarshal(a.Data, out); err != nil {
			return fmt.Errorf("graphql: decode data: %w", err)
		}
	}
	return nil
}
