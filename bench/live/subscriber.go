package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The graphql-transport-ws subprotocol (graphql-ws's PROTOCOL.md).
const subprotocol = "graphql-transport-ws"

const dropUpdatedSubscription = `subscription Watch($dropId: ID!) {
  dropUpdated(dropId: $dropId) { status stock { available reserved sold total } }
}`

// dropState is one dropUpdated message as the subscriber received it.
type dropState struct {
	// At is when the message was read off the socket, Unix nanoseconds.
	At                               int64
	Available, Reserved, Sold, Total int32
	Status                           string
}

// sameAs reports whether two states show the same stock and status.
func (s dropState) sameAs(o dropState) bool {
	return s.Available == o.Available && s.Reserved == o.Reserved && s.Sold == o.Sold &&
		s.Total == o.Total && s.Status == o.Status
}

// subscriber is one WebSocket with one dropUpdated subscription, recording
// every state it receives.
type subscriber struct {
	conn *websocket.Conn
	done chan struct{}

	mu     sync.Mutex
	states []dropState // in order of receipt; the first is the snapshot
	// err is why the stream ended before Close, nil while it runs.
	err     error
	closing bool
}

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type nextPayload struct {
	Data *struct {
		DropUpdated *struct {
			Status string `json:"status"`
			Stock  struct {
				Available int32 `json:"available"`
				Reserved  int32 `json:"reserved"`
				Sold      int32 `json:"sold"`
				Total     int32 `json:"total"`
			} `json:"stock"`
		} `json:"dropUpdated"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// subscribe opens a WebSocket to wsURL, runs connection_init (with the
// bearer token when not empty), subscribes to the drop and waits for its
// first state, all within ctx; then a goroutine of its own reads the rest.
// The stream's lifetime is the subscriber's, not ctx's: Close ends it.
func subscribe(ctx context.Context, client *http.Client, wsURL, dropGID, token string) (*subscriber, error) {
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPClient:   client,
		Subprotocols: []string{subprotocol},
	})
	if err != nil {
		return nil, fmt.Errorf("open WebSocket %s: %w", wsURL, err)
	}
	s := &subscriber{conn: conn, done: make(chan struct{})}
	if err := s.start(ctx, dropGID, token); err != nil {
		conn.CloseNow()
		return nil, err
	}
	go s.read()
	return s, nil
}

// start runs the protocol up to the first state.
func (s *subscriber) start(ctx context.Context, dropGID, token string) error {
	if got := s.conn.Subprotocol(); got != subprotocol {
		return fmt.Errorf("server chose subprotocol %q, want %q", got, subprotocol)
	}
	init := map[string]any{}
	if token != "" {
		init["Authorization"] = "Bearer " + token
	}
	if err := s.send(ctx, "", "connection_init", init); err != nil {
		return err
	}
	if err := s.await(ctx, "connection_ack"); err != nil {
		return err
	}
	err := s.send(ctx, "1", "subscribe", map[string]any{
		"query": dropUpdatedSubscription, "variables": map[string]any{"dropId": dropGID},
	})
	if err != nil {
		return err
	}
	return s.await(ctx, "next")
}

func (s *subscriber) send(ctx context.Context, id, typ string, payload any) error {
	m := wsMessage{ID: id, Type: typ}
	if payload != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("encode %s: %w", typ, err)
		}
		m.Payload = raw
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s: %w", typ, err)
	}
	return nil
}

// await handles messages until one of type want has been handled.
func (s *subscriber) await(ctx context.Context, want string) error {
	for {
		typ, err := s.next(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", want, err)
		}
		if typ == want {
			return nil
		}
	}
}

// next reads and handles one message and returns its type: a state is
// recorded, a ping answered; an error or complete ends the stream.
func (s *subscriber) next(ctx context.Context) (string, error) {
	_, data, err := s.conn.Read(ctx)
	at := time.Now().UnixNano()
	if err != nil {
		return "", err
	}
	// Most messages are states: one pass decodes them whole; anything else
	// (whose payload may not fit, which the decoder reports after setting
	// the type) is decoded again as a plain message.
	var nm nextMessage
	nerr := json.Unmarshal(data, &nm)
	if nm.Type == "next" {
		if nerr != nil {
			return "", fmt.Errorf("decode next message: %w", nerr)
		}
		st, err := nm.Payload.state()
		if err != nil {
			return "", err
		}
		st.At = at
		s.mu.Lock()
		s.states = append(s.states, st)
		s.mu.Unlock()
		return nm.Type, nil
	}
	var m wsMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("message is not JSON: %.200q", data)
	}
	switch m.Type {
	case "ping":
		if err := s.send(ctx, "", "pong", nil); err != nil {
			return "", err
		}
	case "pong", "connection_ack":
	case "error":
		return "", fmt.Errorf("subscription refused: %s", m.Payload)
	case "complete":
		return "", errors.New("subscription completed by the server")
	default:
		return "", fmt.Errorf("unexpected %q message", m.Type)
	}
	return m.Type, nil
}

// nextMessage is a next message decoded in one pass.
type nextMessage struct {
	Type    string      `json:"type"`
	Payload nextPayload `json:"payload"`
}

// state reads the drop's state out of a next message's payload.
func (p *nextPayload) state() (dropState, error) {
	if len(p.Errors) > 0 {
		return dropState{}, fmt.Errorf("next carried errors: %s", p.Errors[0].Message)
	}
	if p.Data == nil || p.Data.DropUpdated == nil {
		return dropState{}, errors.New("next without dropUpdated")
	}
	u := p.Data.DropUpdated
	return dropState{
		Available: u.Stock.Available, Reserved: u.Stock.Reserved, Sold: u.Stock.Sold, Total: u.Stock.Total,
		Status: internStatus(u.Status),
	}, nil
}

// internStatus shares one string per status among all recorded states.
func internStatus(s string) string {
	switch s {
	case "SCHEDULED":
		return "SCHEDULED"
	case "LIVE":
		return "LIVE"
	case "SOLD_OUT":
		return "SOLD_OUT"
	case "ENDED":
		return "ENDED"
	case "CANCELLED":
		return "CANCELLED"
	}
	return strings.Clone(s)
}

// read handles messages until the stream ends.
func (s *subscriber) read() {
	defer close(s.done)
	for {
		if _, err := s.next(context.Background()); err != nil {
			s.mu.Lock()
			if !s.closing {
				s.err = err
			}
			s.mu.Unlock()
			return
		}
	}
}

// last returns the newest state received and why the stream ended early
// (nil while it runs).
func (s *subscriber) last() (dropState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.states) == 0 {
		return dropState{}, false, s.err
	}
	return s.states[len(s.states)-1], true, s.err
}

// received returns every state received so far.
func (s *subscriber) received() []dropState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]dropState(nil), s.states...)
}

// Close completes the subscription politely and closes the socket.
func (s *subscriber) Close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.send(ctx, "1", "complete", nil)
	_ = s.conn.Close(websocket.StatusNormalClosure, "")
	<-s.done
}
