// Output capture: descriptors 1 and 2 become one pipe, read here. During a call what the function (or a
// process it starts) prints is kept for the call's `logs` (the last LogLimit bytes); outside a call it
// goes on to the real stderr, never onto the line. Bytes are taken from the pipe only under the lock, and
// kept in the same hold of it: at a call's end, one read of what is still in the pipe (usually nothing)
// has everything printed before it, with no wake-up of another goroutine and no marker round trip.
package zfaasrt

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
)

// At most this much is read at a call's end: a process the call left running may keep the pipe full.
const endDrainLimit = 4 << 20

type capture struct {
	mu     sync.Mutex
	stderr *os.File // the real stderr
	stdout *os.File // the real stdout (in stdin/stdout mode, the line)
	pipe   *os.File // the pipe's writing end (also descriptors 1 and 2)
	r      *os.File // the pipe's reading end (non-blocking, as os.Pipe makes it); held: its finalizer closes it
	rfd    int      // its descriptor
	active bool
	buf    []byte
	chunk  []byte
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
	c := &capture{
		stderr: os.NewFile(uintptr(errFd), "stderr"),
		stdout: os.NewFile(uintptr(outFd), "stdout"),
		pipe:   w,
		r:      r,
		chunk:  make([]byte, 64*1024),
	}
	for _, fd := range []int{1, 2} {
		if err := syscall.Dup3(int(w.Fd()), fd, 0); err != nil {
			return nil, err
		}
	}
	// Its descriptor by RawConn: Fd would make it blocking.
	rc, err := r.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { c.rfd = int(fd) })
	}
	if err != nil {
		return nil, err
	}
	go c.read(rc)
	return c, nil
}

// Waits (in Go's poller) for the pipe to be readable and takes what is there, until its writers are gone.
func (c *capture) read(rc syscall.RawConn) {
	for {
		ended := false
		err := rc.Read(func(uintptr) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			ended = c.drain(-1)
			return ended
		})
		if err != nil || ended {
			return
		}
	}
}

// Reads what is in the pipe now (at most `limit` bytes when limit >= 0), with the lock held; whether the
// pipe has ended.
func (c *capture) drain(limit int) bool {
	for read := 0; limit < 0 || read < limit; {
		n, err := syscall.Read(c.rfd, c.chunk)
		if n > 0 {
			c.take(c.chunk[:n])
			read += n
			continue
		}
		if err == syscall.EINTR {
			continue
		}
		return n == 0 && err == nil // EOF; EAGAIN: nothing more for now
	}
	return false
}

func (c *capture) take(p []byte) {
	if !c.active {
		c.stderr.Write(p)
		return
	}
	c.buf = append(c.buf, p...)
	// Only the end is kept.
	if keep := LogLimit; len(c.buf) > 2*keep {
		c.buf = append(c.buf[:0], c.buf[len(c.buf)-keep:]...)
	}
}

// What was printed before the call began is not the call's: it goes to stderr first.
func (c *capture) begin() {
	c.mu.Lock()
	c.drain(endDrainLimit)
	c.active = true
	c.buf = c.buf[:0]
	c.mu.Unlock()
}

// What the call printed: what was read already and what is still in the pipe.
func (c *capture) end() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drain(endDrainLimit)
	c.active = false
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
