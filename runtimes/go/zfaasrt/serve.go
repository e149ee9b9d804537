// The Go loader: keeps one function loaded and runs its calls, speaking the loader protocol
// (protocol/loader.ts; docs/loader-protocol.md). Main is what every Go function's binary runs (the build
// step generates a main calling it with the package's functions), and with no functions it is the image's
// generic loader: a stem cell that, on `load`, execs the function's binary (FOLDER/.zfaas/function) with
// the line's descriptors and the load request, so that the same process (same pid, same connection)
// answers the load and serves the calls.
package zfaasrt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where the build step puts a function's binary, in its folder.
const BinaryPath = ".zfaas/function"

var formats = map[string]bool{"auto": true, "json": true, "lambda": true, "lambda-v1": true, "openwhisk": true, "openfaas": true, "gcf": true}

type server struct {
	line     *line
	cap      *capture
	registry map[string]any // nil in the generic loader
	fn       *handler
	format   string
	dir      string
	loadEnv  map[string]*string // what the load's variables were before it set them
}

// Main runs the loader with the function's handlers by name; it never returns. `--once` runs one call
// (policy none): params from stdin or ZFAAS_PARAMS, the value on stdout.
func Main(registry map[string]any) {
	if len(os.Args) > 1 && os.Args[1] == "--once" {
		os.Exit(once(registry))
	}
	l, err := openLine()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zfaas: cannot open the line to the node:", err)
		os.Exit(1)
	}
	c, err := startCapture()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zfaas: cannot capture output:", err)
		os.Exit(1)
	}
	s := &server{line: l, cap: c, registry: registry}
	if raw := os.Getenv(loadEnv); raw != "" {
		os.Unsetenv(loadEnv) // the load this process was exec'd to answer
		var req request
		if err := json.Unmarshal([]byte(raw), &req); err != nil {
			l.send(loaded{Op: "loaded", OK: false, Error: "the handed-on load request does not parse: " + err.Error()})
		} else {
			l.send(s.load(&req))
		}
	} else {
		l.send(hello{Op: "hello", V: Version, Pid: os.Getpid(), Steady: true})
	}
	s.serve()
	os.Exit(0)
}

func (s *server) serve() {
	for {
		raw, err := s.line.read()
		if err != nil {
			if err != io.EOF {
				s.cap.note("the line ended: %v", err)
			}
			return
		}
		if strings.TrimSpace(string(raw)) == "" {
			continue
		}
		var req request
		if err := json.Unmarshal(raw, &req); err != nil {
			var id struct {
				ID *int64 `json:"id"`
			}
			json.Unmarshal(raw, &id)
			s.line.send(errorReply{Op: "error", Error: "cannot read the request: " + err.Error(), ID: id.ID})
			continue
		}
		reply, err := s.handle(&req, raw)
		var bad badRequest
		if errors.As(err, &bad) {
			s.line.send(errorReply{Op: "error", Error: bad.why, ID: req.ID})
			continue
		}
		s.line.send(reply)
	}
}

func (s *server) handle(req *request, raw []byte) (any, error) {
	switch req.Op {
	case "ping":
		return map[string]string{"op": "pong"}, nil
	case "load":
		if req.Dir == nil {
			return nil, badRequest{"load: dir is missing"}
		}
		if err := checkEnv(req.Env); err != nil {
			return nil, err
		}
		if req.Format != nil && !formats[*req.Format] {
			return nil, badRequest{"load: format " + *req.Format + " is not one this loader knows"}
		}
		if s.execs(*req.Dir) {
			return s.exec(req, raw), nil
		}
		return s.load(req), nil
	case "call":
		if req.ID == nil || *req.ID < 1 {
			return nil, badRequest{"call: id must be a whole number from 1"}
		}
		if err := checkEnv(req.Env); err != nil {
			return nil, err
		}
		return s.call(req), nil
	case "secrets":
		return setSecrets(req)
	default:
		return nil, badRequest{"unknown op " + strconv.Quote(req.Op)}
	}
}

// Whether a load of `dir` is not this binary's: this process execs that one, or says it is missing (the
// generic loader always does).
func (s *server) execs(dir string) bool {
	if s.registry == nil {
		return true
	}
	self, err1 := os.Executable()
	a, err2 := os.Stat(self)
	b, err3 := os.Stat(filepath.Join(dir, BinaryPath))
	return !(err1 == nil && err2 == nil && err3 == nil && os.SameFile(a, b))
}

// Becomes the function's binary; answers the load itself when it cannot.
func (s *server) exec(req *request, raw []byte) any {
	bin := filepath.Join(*req.Dir, BinaryPath)
	if _, err := os.Stat(bin); err != nil {
		why := fmt.Sprintf("the function's folder %s has no built binary %s: was it built by the go runtime's dependencies step?", *req.Dir, BinaryPath)
		if _, e := os.Stat(*req.Dir); e != nil {
			why = fmt.Sprintf("the function's folder %s does not exist", *req.Dir)
		}
		s.fn = nil
		return loaded{Op: "loaded", OK: false, Error: why}
	}
	restoreEnv(s.loadEnv) // the binary gets the environment the container started with, and this load's
	s.loadEnv = nil
	env := append(append(os.Environ(), s.line.handOn()...), loadEnv+"="+string(raw))
	s.cap.restore()
	err := syscall.Exec(bin, []string{bin}, env)
	startCaptureAgain(s) // only reached when the exec failed
	s.fn = nil
	return loaded{Op: "loaded", OK: false, Error: fmt.Sprintf("cannot start the function's binary %s: %v", bin, err)}
}

func startCaptureAgain(s *server) {
	if c, err := startCapture(); err == nil {
		s.cap = c
	}
}

func (s *server) load(req *request) loaded {
	restoreEnv(s.loadEnv) // a new load replaces the last one's variables
	s.loadEnv = applyEnv(req.Env)
	s.fn = nil
	name := ""
	if req.Handler != nil {
		name = *req.Handler
	}
	h, _, err := findHandler(s.registry, name)
	if err != nil {
		return loaded{Op: "loaded", OK: false, Error: cut(err.Error(), LogLimit)}
	}
	asked := "auto"
	if req.Format != nil {
		asked = *req.Format
	}
	format, err := chooseFormat(h, asked)
	if err != nil {
		return loaded{Op: "loaded", OK: false, Error: err.Error()}
	}
	s.fn, s.format, s.dir = h, format, *req.Dir
	return loaded{Op: "loaded", OK: true, Format: format}
}

// The format a handler runs in: a func in json or lambda, an http.Handler in gcf or openfaas.
func chooseFormat(h *handler, asked string) (string, error) {
	if h.web != nil {
		switch asked {
		case "auto":
			return "gcf", nil
		case "gcf", "openfaas":
			return asked, nil
		}
		return "", fmt.Errorf("an http.Handler serves the formats gcf and openfaas, not %s", asked)
	}
	switch asked {
	case "auto":
		return "json", nil
	case "json", "lambda":
		return asked, nil
	}
	return "", fmt.Errorf("a Go func handler serves the formats json and lambda, not %s (an http.Handler serves gcf and openfaas)", asked)
}

func (s *server) call(req *request) (r result) {
	t0 := time.Now()
	defer func() { r.Took = time.Since(t0).Microseconds() }()
	r = result{Op: "result", ID: *req.ID}
	if s.fn == nil {
		r.Error = "no function is loaded"
		return r
	}
	before := applyEnv(req.Env)
	s.cap.begin()
	value, resp, err := s.run(req)
	r.Logs = s.cap.end()
	restoreEnv(before)
	var re responseError
	switch {
	case errors.As(err, &re):
		r.Fault = "response"
		r.Error = re.why
	case err != nil:
		r.Error = cut(err.Error(), LogLimit)
	default:
		r.OK = true
		r.HTTP = resp
		if value != nil {
			text := string(value)
			if len(text) > ResultLimit {
				text = cut(text, ResultLimit)
				r.Truncated = true
			}
			r.Result = &text
		}
	}
	if n := strayProcesses(); n > 0 {
		r.Stray = n
	}
	return r
}

// Runs the call in the function's format: its value (JSON) and, for a web call, the response.
func (s *server) run(req *request) ([]byte, *httpResponse, error) {
	id := os.Getenv("ZFAAS_CALL")
	if id == "" {
		id = strconv.FormatInt(*req.ID, 10)
	}
	ctx, cancel := callContext(id)
	defer cancel()
	web := req.HTTP != nil
	if web && req.HTTP.Headers == nil {
		req.HTTP.Headers = map[string]string{}
	}
	if s.fn.web != nil {
		if web {
			resp, err := serveHTTP(ctx, s.fn.web, req.HTTP)
			return nil, resp, err
		}
		v, err := serveDirect(ctx, s.fn.web, req.Params)
		return v, nil, err
	}
	event := []byte(req.Params)
	if web && s.format == "lambda" {
		ev, err := lambdaEvent(req.HTTP, id)
		if err != nil {
			return nil, nil, err
		}
		event = ev
	}
	v, err := s.fn.invoke(ctx, event)
	if err != nil || !(web && s.format == "lambda") {
		return v, nil, err
	}
	resp, err := lambdaResponse(v)
	return v, resp, err
}

// WrapContext, when set, adds to a call's context what the function expects there: the build step sets it
// to put aws-lambda-go's lambdacontext.LambdaContext in when the function vendors that package.
var WrapContext func(ctx context.Context, requestID, functionName string) context.Context

// The call's context: its deadline (ZFAAS_DEADLINE, epoch ms) and its request id.
func callContext(id string) (context.Context, context.CancelFunc) {
	ctx := context.WithValue(context.Background(), callKey{}, &CallInfo{RequestID: id, FunctionName: functionName()})
	if WrapContext != nil {
		ctx = WrapContext(ctx, id, functionName())
	}
	if ms, err := strconv.ParseInt(os.Getenv("ZFAAS_DEADLINE"), 10, 64); err == nil && ms > 0 {
		return context.WithDeadline(ctx, time.UnixMilli(ms))
	}
	return context.WithCancel(ctx)
}

// CallInfo is what the call's context carries, as aws-lambda-go's lambdacontext.LambdaContext does.
type CallInfo struct {
	RequestID    string
	FunctionName string
}

type callKey struct{}

// FromContext returns the call's CallInfo.
func FromContext(ctx context.Context) (*CallInfo, bool) {
	c, ok := ctx.Value(callKey{}).(*CallInfo)
	return c, ok
}
