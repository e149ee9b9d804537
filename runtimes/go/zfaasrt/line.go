// The line to the node: the unix socket ZFAAS_LINE names (dialled, retrying while the node starts), or
// stdin/stdout without it; or, in a process a loader exec'd into on `load`, the descriptors it handed on
// (ZFAAS_LINE_FDS). Handing the line on keeps the container's one loader process (same pid) and its
// connection when a stem cell becomes a function.
package zfaasrt

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const lineFdsEnv = "ZFAAS_LINE_FDS"     // "IN,OUT": the line's descriptors, handed on through exec
const loadEnv = "ZFAAS_LOAD_REQUEST"    // the `load` the process before the exec was answering
const pendingEnv = "ZFAAS_LINE_PENDING" // what it had read of the line after that load (base64)

type line struct {
	in  *os.File
	out *os.File
	r   *bufio.Reader
	mu  sync.Mutex
}

func openLine() (*line, error) {
	if fds := os.Getenv(lineFdsEnv); fds != "" {
		os.Unsetenv(lineFdsEnv)
		parts := strings.Split(fds, ",")
		if len(parts) != 2 {
			return nil, fmt.Errorf("%s=%q is not IN,OUT", lineFdsEnv, fds)
		}
		in, err1 := strconv.Atoi(parts[0])
		out, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s=%q is not IN,OUT", lineFdsEnv, fds)
		}
		syscall.CloseOnExec(in)
		syscall.CloseOnExec(out)
		l := &line{in: os.NewFile(uintptr(in), "line-in"), out: os.NewFile(uintptr(out), "line-out")}
		pending, _ := base64.StdEncoding.DecodeString(os.Getenv(pendingEnv))
		os.Unsetenv(pendingEnv)
		l.r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), l.in), 1<<16)
		return l, nil
	}
	if path := os.Getenv(LineEnv); path != "" {
		var conn net.Conn
		var err error
		for i := 0; i < 50; i++ { // the node listens before the container starts; a few tries cover a slow start
			if conn, err = net.Dial("unix", path); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return nil, err
		}
		f, err := conn.(*net.UnixConn).File() // a blocking descriptor of its own, which exec can hand on
		conn.Close()
		if err != nil {
			return nil, err
		}
		l := &line{in: f, out: f}
		l.r = bufio.NewReaderSize(f, 1<<16)
		return l, nil
	}
	// stdin/stdout: the output moves off descriptor 1, which captures the function's prints.
	out, err := syscall.Dup(1)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(out)
	l := &line{in: os.Stdin, out: os.NewFile(uintptr(out), "line-out")}
	l.r = bufio.NewReaderSize(os.Stdin, 1<<16)
	return l, nil
}

// The next request line, without its "\n"; io.EOF when the node is gone.
func (l *line) read() ([]byte, error) {
	var buf []byte
	for {
		part, err := l.r.ReadSlice('\n')
		buf = append(buf, part...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && len(buf) == 0 {
			return nil, err
		}
		return []byte(strings.TrimRight(string(buf), "\r\n")), nil
	}
}

func (l *line) send(m any) {
	b, err := marshal(m)
	if err != nil {
		b, _ = json.Marshal(errorReply{Op: "error", Error: "the loader could not encode its reply: " + err.Error()})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out.Write(append(b, '\n'))
}

// What to hand on through exec: the descriptors, without close-on-exec, and what was read past the
// request being answered.
func (l *line) handOn() []string {
	in, out := int(l.in.Fd()), int(l.out.Fd())
	clearCloseOnExec(in)
	clearCloseOnExec(out)
	pending, _ := l.r.Peek(l.r.Buffered())
	return []string{lineFdsEnv + "=" + strconv.Itoa(in) + "," + strconv.Itoa(out), pendingEnv + "=" + base64.StdEncoding.EncodeToString(pending)}
}

func clearCloseOnExec(fd int) {
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0)
}
