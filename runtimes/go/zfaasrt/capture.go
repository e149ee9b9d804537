// Output capture: descriptors 1 and 2 become one pipe, read here. During a call what the function (or a
// process it starts) prints is kept for the call's `logs` (the last LogLimit bytes); outside a call it
// goes on to the real stderr, never onto the line. At a call's end a marker written into the pipe tells
// when everything printed before it has been read.
package zfaasrt

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

type capture struct {
	mu      sync.Mutex
	stderr  *os.File // the real stderr
	stdout  *os.File // the real stdout (in stdin/stdout mode, the line)
	pipe    *os.File // the pipe's writing end (also descriptors 1 and 2)
	active  bool
	buf     []byte
	marker  []byte
	done    chan struct{}
	markers int
}

func startCapture() (*capture, error) {
	errFd, err := syscall.Dup(2)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(errFd)
	outFd, err := syscall.Dup(1)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(outFd)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c := &capture{stderr: os.NewFile(uintptr(errFd), "stderr"), stdout: os.NewFile(uintptr(outFd), "stdout"), pipe: w}
	for _, fd := range []int{1, 2} {
		if err := syscall.Dup3(int(w.Fd()), fd, 0); err != nil {
			return nil, err
		}
	}
	go c.read(r)
	return c, nil
}

func (c *capture) read(r *os.File) {
	b := make([]byte, 64*1024)
	for {
		n, err := r.Read(b)
		if n > 0 {
			c.take(b[:n])
		}
		if err != nil {
			return
		}
	}
}

func (c *capture) take(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active {
		c.stderr.Write(p)
		return
	}
	c.buf = append(c.buf, p...)
	if c.done != nil {
		if i := bytes.Index(c.buf, c.marker); i >= 0 {
			after := append([]byte(nil), c.buf[i+len(c.marker):]...)
			c.buf = c.buf[:i]
			c.active = false
			close(c.done)
			c.done = nil
			if len(after) > 0 {
				c.stderr.Write(after)
			}
			return
		}
	}
	// Only the end is kept (with room for a marker cut in two).
	if keep := LogLimit + 256; len(c.buf) > 2*keep {
		c.buf = append(c.buf[:0], c.buf[len(c.buf)-keep:]...)
	}
}

func (c *capture) begin() {
	c.mu.Lock()
	c.active = true
	c.buf = c.buf[:0]
	c.mu.Unlock()
}

// What the call printed, once all of it has been read.
func (c *capture) end() string {
	c.mu.Lock()
	c.markers++
	c.marker = []byte(fmt.Sprintf("\x00zfaas-end-%d-%d\x00", os.Getpid(), c.markers))
	done := make(chan struct{})
	c.done = done
	c.mu.Unlock()
	c.pipe.Write(c.marker)
	select {
	case <-done:
	case <-time.After(2 * time.Second): // a pipe kept full by a process the call left running
		c.mu.Lock()
		c.active = false
		c.done = nil
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.ToValidUTF8(tail(string(c.buf), LogLimit), "\uFFFD")
}

// Descriptors 1 and 2 as they were, before an exec hands the process on.
func (c *capture) restore() {
	syscall.Dup3(int(c.stdout.Fd()), 1, 0)
	syscall.Dup3(int(c.stderr.Fd()), 2, 0)
}

// Says something on the real stderr (outside the call's logs).
func (c *capture) note(format string, args ...any) {
	fmt.Fprintf(c.stderr, "zfaas: "+format+"\n", args...)
}
