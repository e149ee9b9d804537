// zfaas-bridge: the loader of a container-image function. zfaas mounts this static binary read-only into
// the function's container and makes it the container's first process (after docker-init). It dials the
// node's line (ZFAAS_LINE), says hello, and at `load` starts the image's own entrypoint and command
// (ZFAAS_BRIDGE_CMD, a JSON list the node read from the image's config) with PORT set, waits until the
// server accepts connections on 127.0.0.1:PORT within the readiness limit (ZFAAS_BRIDGE_READINESS,
// seconds), then turns each call into one HTTP request to it (mapping.go); with a load's `concurrency` above
// 1 (loader protocol version 3) several at once, each cancellable. It exits when the server
// exits (with its code) or the line ends (stopping the server). Loopback works in a container without a
// network, so the bridge reaches the server whatever the function's network setting.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type bridge struct {
	busy      sync.RWMutex // read-held through each call and its reply: the bridge never exits in between
	sending   sync.Mutex   // one reply on the line at a time
	cancels   sync.Map     // call id -> its context's cancel function, while it runs
	port      int
	readiness time.Duration
	argv      []string
	srv       *server
	client    *http.Client
	out       *json.Encoder
}

func main() {
	port := 8080
	if p, err := strconv.Atoi(os.Getenv("PORT")); err == nil && p > 0 && p < 65536 {
		port = p
	}
	readiness := 10 * time.Second
	if s, err := strconv.ParseFloat(os.Getenv("ZFAAS_BRIDGE_READINESS"), 64); err == nil && s > 0 {
		readiness = time.Duration(s * float64(time.Second))
	}
	var argv []string
	if raw := os.Getenv("ZFAAS_BRIDGE_CMD"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &argv); err != nil {
			fmt.Fprintf(os.Stderr, "zfaas-bridge: ZFAAS_BRIDGE_CMD is not a JSON list of strings: %v\n", err)
			os.Exit(2)
		}
	}
	in, out, err := line()
	if err != nil {
		fmt.Fprintf(os.Stderr, "zfaas-bridge: %v\n", err)
		os.Exit(2)
	}
	b := &bridge{port: port, readiness: readiness, argv: argv, out: json.NewEncoder(out), client: &http.Client{
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
		// A redirect is the server's answer to pass on, never one to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	b.out.SetEscapeHTML(false)
	b.send(reply{Op: "hello", V: protocolVersion, Pid: os.Getpid()})
	b.serve(bufio.NewReaderSize(in, 1<<20))
	b.stop()
}

// line is the node's socket (dialled, retrying for a few seconds), else stdin and stdout.
func line() (io.Reader, io.Writer, error) {
	path := os.Getenv("ZFAAS_LINE")
	if path == "" {
		return os.Stdin, os.Stdout, nil
	}
	var last error
	for i := 0; i < 100; i++ {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, c, nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return nil, nil, fmt.Errorf("could not reach the node at %s: %v", path, last)
}

func (b *bridge) send(r reply) {
	b.sending.Lock()
	defer b.sending.Unlock()
	if err := b.out.Encode(r); err != nil {
		fmt.Fprintf(os.Stderr, "zfaas-bridge: the line broke: %v\n", err)
		b.stop()
		os.Exit(1)
	}
}

func (b *bridge) serve(in *bufio.Reader) {
	for {
		raw, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(raw))) > 0 {
			b.handle(raw)
		}
		if err != nil {
			return
		}
	}
}

func (b *bridge) handle(raw []byte) {
	var m request
	if err := json.Unmarshal(raw, &m); err != nil {
		b.send(reply{Op: "error", Error: "not a JSON request: " + err.Error()})
		return
	}
	switch m.Op {
	case "ping":
		b.send(reply{Op: "pong"})
	case "load":
		if err := b.load(m.Env); err != nil {
			b.send(reply{Op: "loaded", Ok: no(), Error: err.Error()})
		} else {
			b.send(reply{Op: "loaded", Ok: yes()})
		}
	case "call":
		if m.ID < 1 {
			b.send(reply{Op: "error", Error: "a call needs an id"})
			return
		}
		// Each call on its own: with a load's concurrency above 1 the node sends the next before this one's result.
		b.busy.RLock()
		ctx, cancel := context.WithCancel(context.Background())
		b.cancels.Store(m.ID, cancel)
		t0 := time.Now()
		go func() {
			defer b.busy.RUnlock()
			r := b.call(ctx, &m)
			b.cancels.Delete(m.ID)
			cancel()
			took := time.Since(t0).Microseconds()
			r.Took = &took
			b.send(r)
		}()
	case "cancel":
		// Its result comes from the call itself, at once; a call that already ended is not answered again.
		if c, ok := b.cancels.Load(m.ID); ok {
			c.(context.CancelFunc)()
		}
	case "secrets":
		if err := writeSecrets(m.Dir, m.Files, m.Keep); err != nil {
			b.send(reply{Op: "secretsSet", Ok: no(), Error: err.Error()})
		} else {
			b.send(reply{Op: "secretsSet", Ok: yes()})
		}
	default:
		r := reply{Op: "error", Error: fmt.Sprintf("unknown op %q", m.Op)}
		if m.ID > 0 {
			r.ID = m.ID
		}
		b.send(r)
	}
}

// load starts the server once and waits for its readiness.
func (b *bridge) load(env map[string]string) error {
	if b.srv != nil {
		return nil
	}
	srv, err := startServer(b.argv, serverEnv(os.Environ(), env, b.port), "")
	if err != nil {
		return err
	}
	b.srv = srv
	if err := srv.ready(b.addr(), b.port, b.readiness); err != nil {
		return err
	}
	// From now on the container lives as long as its server.
	go func() {
		<-srv.exited
		b.busy.Lock() // the calls under way are answered first
		fmt.Fprintf(os.Stderr, "zfaas-bridge: the image's server exited (code %d)\n", srv.code)
		os.Exit(srv.code)
	}()
	return nil
}

// serverEnv is the server's environment: the container's, minus the bridge's own, plus the function's and PORT.
func serverEnv(base []string, fn map[string]string, port int) []string {
	out := []string{}
	for _, kv := range base {
		name := kv
		if i := strings.IndexByte(kv, '='); i >= 0 {
			name = kv[:i]
		}
		if name == "ZFAAS_LINE" || name == "PORT" || strings.HasPrefix(name, "ZFAAS_BRIDGE_") {
			continue
		}
		if _, over := fn[name]; over {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range fn {
		if k != "PORT" {
			out = append(out, k+"="+v)
		}
	}
	return append(out, "PORT="+strconv.Itoa(port))
}

func (b *bridge) addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

func (b *bridge) call(ctx context.Context, m *request) reply {
	if b.srv == nil {
		return reply{Op: "result", ID: m.ID, Ok: no(), Error: "a call before the function was loaded", Logs: str("")}
	}
	base := "http://" + b.addr()
	var req *http.Request
	var err error
	if m.HTTP != nil {
		req, err = webRequest(base, m.HTTP, m.Env)
	} else {
		req, err = jsonRequest(base, m.Params, m.Env)
	}
	if err != nil {
		return reply{Op: "result", ID: m.ID, Ok: no(), Error: err.Error(), Logs: str("")}
	}
	req = req.WithContext(ctx)
	if gone := b.exitedReply(m.ID, "before"); gone != nil {
		return *gone
	}
	logs := b.srv.out.capture()
	resp, err := b.client.Do(req)
	if err != nil && ctx.Err() != nil {
		return reply{Op: "result", ID: m.ID, Ok: no(), Error: cancelled, Logs: str(logs())}
	}
	if err != nil {
		select {
		case <-b.srv.exited:
			logs()
			return *b.exitedReply(m.ID, "during")
		case <-time.After(100 * time.Millisecond):
		}
		return reply{Op: "result", ID: m.ID, Ok: no(), Error: "the image's server did not answer: " + err.Error(), Logs: str(logs())}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit+1))
	resp.Body.Close()
	b.srv.out.drain()
	if err != nil && ctx.Err() != nil {
		return reply{Op: "result", ID: m.ID, Ok: no(), Error: cancelled, Logs: str(logs())}
	}
	if err != nil {
		return reply{Op: "result", ID: m.ID, Ok: no(), Fault: "response", Error: "the server's answer broke off: " + err.Error(), Logs: str(logs())}
	}
	if m.HTTP != nil {
		return webAnswer(m.ID, resp.StatusCode, resp.Header, body, logs())
	}
	return jsonAnswer(m.ID, resp.StatusCode, body, logs())
}

// stop ends the server (the line ended: the node is removing the container).
func (b *bridge) stop() {
	if b.srv == nil {
		return
	}
	b.srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.srv.exited:
	case <-time.After(2 * time.Second):
		b.srv.cmd.Process.Kill()
	}
}

// exitedReply is the answer to a call once the server has exited: an `error`, after which the node
// removes the container (the bridge exits with the server's code as soon as it is sent); nil while it runs.
func (b *bridge) exitedReply(id int64, when string) *reply {
	select {
	case <-b.srv.exited:
		return &reply{Op: "error", ID: id, Error: fmt.Sprintf("the image's server exited (code %d) %s the call%s", b.srv.code, when, said(b.srv.out.end()))}
	default:
		return nil
	}
}
