// The image's own server: started as the bridge's child with the image's entrypoint and command, PORT
// set, and the function's environment; watched until it accepts connections on 127.0.0.1:PORT (its
// readiness) and for its end. What it prints goes to the bridge's stderr, and into the logs of the call
// running while it prints.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// output is the server's output: passed on to stderr, kept for the running call, and its end kept for
// saying why the server stopped.
type output struct {
	pipe    *os.File    // the read end of the server's stdout and stderr
	busy    atomic.Bool // a chunk read from the pipe is being passed on
	mu      sync.Mutex
	calls   map[*strings.Builder]bool // the running calls' captures: with several at once, each gets all
	tail    []byte
	tailMax int
	pumped  chan struct{} // closed when the pipe is read to its end (every writer gone)
}

func (o *output) Write(p []byte) (int, error) {
	os.Stderr.Write(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := range o.calls {
		if c.Len() < logLimit {
			room := logLimit - c.Len()
			if len(p) < room {
				room = len(p)
			}
			c.Write(p[:room])
		}
	}
	o.tail = append(o.tail, p...)
	if len(o.tail) > o.tailMax {
		o.tail = o.tail[len(o.tail)-o.tailMax:]
	}
	return len(p), nil
}

// pump passes on what the server prints, chunk by chunk, saying while it holds one.
func (o *output) pump() {
	defer close(o.pumped)
	buf := make([]byte, 32*1024)
	for {
		n, err := o.pipe.Read(buf)
		if n > 0 {
			o.busy.Store(true)
			o.Write(buf[:n])
			o.busy.Store(false)
		}
		if err != nil {
			return
		}
	}
}

// drain waits (at most 50 ms) until what the server printed before it answered has been passed on, so
// that output written just before a response is in that call's logs.
func (o *output) drain() {
	for i := 0; i < 500; i++ {
		if !o.busy.Load() && unread(o.pipe) == 0 {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// unread is how many bytes wait in a pipe (FIONREAD).
func unread(f *os.File) int {
	var n int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
		return 0
	}
	return int(n)
}

// capture starts keeping what the server prints for a call; the function it returns ends it and says what was printed.
func (o *output) capture() func() string {
	o.mu.Lock()
	b := &strings.Builder{}
	if o.calls == nil {
		o.calls = map[*strings.Builder]bool{}
	}
	o.calls[b] = true
	o.mu.Unlock()
	return func() string {
		o.mu.Lock()
		defer o.mu.Unlock()
		delete(o.calls, b)
		return b.String()
	}
}

func (o *output) end() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.TrimSpace(string(o.tail))
}

// server is the running child.
type server struct {
	cmd    *exec.Cmd
	out    *output
	exited chan struct{}
	code   int
}

// startServer runs argv with env; argv[0] is looked up in the image's PATH, as Docker would.
func startServer(argv []string, env []string, dir string) (*server, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("the image has no entrypoint or command to start its server with")
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		found, err := lookPath(path, env)
		if err != nil {
			return nil, err
		}
		path = found
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	out := &output{tailMax: 4000, pipe: r, pumped: make(chan struct{})}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Dir: dir, Stdout: w, Stderr: w, Stdin: nil}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("the image's server %q could not start: %v", strings.Join(argv, " "), err)
	}
	go out.pump()
	s := &server{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		s.code = cmd.ProcessState.ExitCode()
		if err != nil && s.code == 0 {
			s.code = 1
		}
		close(s.exited)
	}()
	return s, nil
}

// lookPath finds a command in the PATH of env (the image's), not the bridge's own.
func lookPath(name string, env []string) (string, error) {
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			pathVar = kv[5:]
		}
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			continue
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("the image's command %q is not in its PATH (%s)", name, pathVar)
}

// ready waits until the server accepts connections on addr, it exits, or limit passes.
func (s *server) ready(addr string, port int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-s.exited:
			// Its last words may still be in the pipe (the exit does not wait for them): read to the pipe's
			// end, which comes once no process holds its other end (a child of the server may: 1 s at most).
			select {
			case <-s.out.pumped:
			case <-time.After(time.Second):
			}
			return fmt.Errorf("the image's server exited (code %d) before it listened on port %d%s", s.code, port, said(s.out.end()))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the image's server did not accept connections on port %d within its readiness limit of %s%s", port, limit, said(s.out.end()))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func said(tail string) string {
	if tail == "" {
		return ""
	}
	return ": " + tail
}

var _ io.Writer = (*output)(nil)
