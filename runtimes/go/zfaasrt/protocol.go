// The loader protocol's constants and messages as the Go loader uses them (protocol/loader.ts is the
// specification; runtimes/go/protocol.test.ts fails while these constants differ from it).
package zfaasrt

import (
	"encoding/json"
	"regexp"
)

const (
	Version     = 2
	ResultLimit = 6291456
	LogLimit    = 65536
	LineEnv     = "ZFAAS_LINE"
)

var (
	envName     = regexp.MustCompile("^(?:[A-Za-z_][A-Za-z0-9_]*)$")
	headerToken = regexp.MustCompile("^(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$")
	secretName  = regexp.MustCompile("^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")
	base64Re    = regexp.MustCompile("^(?:[A-Za-z0-9+/]*={0,2})$")
)

// A request from the node: every op's fields in one struct, checked by hand per op.
type request struct {
	Op      string            `json:"op"`
	Dir     *string           `json:"dir"`
	Handler *string           `json:"handler"`
	Env     map[string]string `json:"env"`
	Format  *string           `json:"format"`
	ID      *int64            `json:"id"`
	Params  json.RawMessage   `json:"params"`
	HTTP    *httpRequest      `json:"http"`
	Files   map[string]string `json:"files"`
	Keep    []string          `json:"keep"`
}

// A web request as the node received it (protocol/loader.ts HttpRequestSchema).
type httpRequest struct {
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Query    string            `json:"query"`
	Headers  map[string]string `json:"headers"`
	Body     string            `json:"body"`
	SourceIP string            `json:"sourceIp"`
}

// The response a function chose (HttpResponseSchema): a header is a string or a list of them.
type httpResponse struct {
	Status  int            `json:"status"`
	Headers map[string]any `json:"headers"`
	Body    string         `json:"body"`
}

type hello struct {
	Op     string `json:"op"`
	V      int    `json:"v"`
	Pid    int    `json:"pid"`
	Steady bool   `json:"steady"` // a call's variables do not grow this process (env.go)
}

type loaded struct {
	Op     string `json:"op"`
	OK     bool   `json:"ok"`
	Format string `json:"format,omitempty"`
	Error  string `json:"error,omitempty"`
}

type result struct {
	Op        string        `json:"op"`
	ID        int64         `json:"id"`
	OK        bool          `json:"ok"`
	Result    *string       `json:"result,omitempty"`
	Error     string        `json:"error,omitempty"`
	Fault     string        `json:"fault,omitempty"`
	Logs      string        `json:"logs"`
	Truncated bool          `json:"truncated,omitempty"`
	Stray     int           `json:"stray,omitempty"`
	HTTP      *httpResponse `json:"http,omitempty"`
	Took      int64         `json:"took"` // µs from the call being read to its result (the node's pace of the function)
}

type secretsSet struct {
	Op    string `json:"op"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

type errorReply struct {
	Op    string `json:"op"`
	Error string `json:"error"`
	ID    *int64 `json:"id,omitempty"`
}

// A request the loader cannot read: answered with an `error` reply, and the loader carries on.
type badRequest struct{ why string }

func (b badRequest) Error() string { return b.why }

// Whether the call's or load's env has only names the protocol allows.
func checkEnv(env map[string]string) error {
	for k := range env {
		if !envName.MatchString(k) {
			return badRequest{"env: " + k + " is not a variable name"}
		}
	}
	return nil
}

// At most n bytes of s, cut where a UTF-8 character starts.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// The last n bytes of s, cut where a UTF-8 character starts.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && s[i]&0xC0 == 0x80 {
		i++
	}
	return s[i:]
}
