// The bridge's mapping, checked against a real HTTP server (net/http/httptest) that echoes what it got:
// what a server behind zfaas relies on receiving, and what the node relies on getting back.
package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

type seen struct {
	Method, Path, Query, Body, Host string
	Header                          http.Header
}

func echo(t *testing.T) (*httptest.Server, *bridge) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/fail" {
			w.WriteHeader(503)
			w.Write([]byte("down for maintenance"))
			return
		}
		if r.URL.Path == "/text" {
			w.Write([]byte("plain words"))
			return
		}
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("Connection", "close")
		json.NewEncoder(w).Encode(seen{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Host, r.Header})
	}))
	t.Cleanup(srv.Close)
	b := &bridge{srv: &server{out: &output{tailMax: 100}, exited: make(chan struct{})}, client: &http.Client{
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	return srv, b
}

func call(t *testing.T, srv *httptest.Server, b *bridge, m *request) reply {
	t.Helper()
	base := srv.URL
	var req *http.Request
	var err error
	if m.HTTP != nil {
		req, err = webRequest(base, m.HTTP, m.Env)
	} else {
		req, err = jsonRequest(base, m.Params, m.Env)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m.HTTP != nil {
		return webAnswer(m.ID, resp.StatusCode, resp.Header, body, "")
	}
	return jsonAnswer(m.ID, resp.StatusCode, body, "")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestWebCallPassesMethodPathQueryHeadersAndBody(t *testing.T) {
	srv, b := echo(t)
	r := call(t, srv, b, &request{Op: "call", ID: 7, Env: map[string]string{"ZFAAS_CALL": "3", "ZFAAS_DEADLINE": "99"}, HTTP: &httpRequest{
		Method: "PUT", Path: "/users/1", Query: "a=1&b=x%20y", Body: b64("hello"), SourceIP: "10.1.2.3",
		Headers: map[string]string{"x-custom": "yes", "connection": "keep-alive", "te": "trailers", "host": "example.org", "content-type": "text/plain"},
	}})
	if r.Ok == nil || !*r.Ok || r.HTTP == nil || r.HTTP.Status != 200 || r.ID != 7 {
		t.Fatalf("not a 200 web answer: %+v", r)
	}
	raw, _ := base64.StdEncoding.DecodeString(r.HTTP.Body)
	var s seen
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Method != "PUT" || s.Path != "/users/1" || s.Query != "a=1&b=x%20y" || s.Body != "hello" || s.Host != "example.org" {
		t.Fatalf("the server saw %+v", s)
	}
	if s.Header.Get("X-Custom") != "yes" || s.Header.Get("Te") != "" || s.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("headers: %v", s.Header)
	}
	if s.Header.Get("X-Zfaas-Call") != "3" || s.Header.Get("X-Zfaas-Deadline") != "99" || s.Header.Get("X-Forwarded-For") != "10.1.2.3" {
		t.Fatalf("call headers: %v", s.Header)
	}
	if got := r.HTTP.Headers["set-cookie"]; len(got) != 2 || got[0] != "a=1" {
		t.Fatalf("repeated headers: %v", r.HTTP.Headers)
	}
	if _, has := r.HTTP.Headers["connection"]; has {
		t.Fatalf("hop-by-hop header passed back: %v", r.HTTP.Headers)
	}
	if _, has := r.HTTP.Headers["content-length"]; has {
		t.Fatalf("content-length passed back: %v", r.HTTP.Headers)
	}
}

func TestWebCallPassesStatusAndRedirectsAsTheyAre(t *testing.T) {
	srv, b := echo(t)
	r := call(t, srv, b, &request{Op: "call", ID: 1, HTTP: &httpRequest{Method: "GET", Path: "/redirect", Headers: map[string]string{}}})
	if r.HTTP == nil || r.HTTP.Status != 302 || r.HTTP.Headers["location"][0] != "/elsewhere" {
		t.Fatalf("redirect: %+v", r.HTTP)
	}
	r = call(t, srv, b, &request{Op: "call", ID: 2, HTTP: &httpRequest{Method: "GET", Path: "/fail", Headers: map[string]string{}}})
	if r.Ok == nil || !*r.Ok || r.HTTP.Status != 503 {
		t.Fatalf("a web call's 503 is the server's answer, not a failure: %+v", r)
	}
}

func TestJsonCallPostsParamsAndTakesTheJsonAnswer(t *testing.T) {
	srv, b := echo(t)
	r := call(t, srv, b, &request{Op: "call", ID: 2, Params: json.RawMessage(`{"n":2}`), Env: map[string]string{"ZFAAS_ATTEMPT": "1"}})
	if r.Ok == nil || !*r.Ok || r.Result == nil {
		t.Fatalf("%+v", r)
	}
	var s seen
	if err := json.Unmarshal([]byte(*r.Result), &s); err != nil {
		t.Fatalf("result is not the server's JSON: %v", *r.Result)
	}
	if s.Method != "POST" || s.Path != "/" || s.Body != `{"n":2}` || s.Header.Get("Content-Type") != "application/json" || s.Header.Get("X-Zfaas-Attempt") != "1" {
		t.Fatalf("the server saw %+v", s)
	}
	if strings.Contains(*r.Result, "\n") {
		t.Fatalf("result not compact: %q", *r.Result)
	}
}

func TestJsonCallTextAndFailures(t *testing.T) {
	if r := jsonAnswer(1, 200, []byte("plain words"), ""); *r.Result != `"plain words"` {
		t.Fatalf("text answer: %s", *r.Result)
	}
	if r := jsonAnswer(1, 204, nil, ""); *r.Result != "null" {
		t.Fatalf("empty answer: %s", *r.Result)
	}
	r := jsonAnswer(1, 503, []byte("down for maintenance"), "log line\n")
	if r.Ok == nil || *r.Ok || r.Error != "the server answered 503 Service Unavailable: down for maintenance" || *r.Logs != "log line\n" {
		t.Fatalf("failure: %+v", r)
	}
	big := jsonAnswer(1, 200, []byte(`"`+strings.Repeat("x", resultLimit+10)+`"`), "")
	if !big.Truncated || len(*big.Result) != resultLimit {
		t.Fatalf("a result past the limit is cut and says so")
	}
}

func TestWebAnswerTooLargeIsAResponseFault(t *testing.T) {
	r := webAnswer(4, 200, http.Header{}, make([]byte, bodyLimit+1), "")
	if r.Ok == nil || *r.Ok || r.Fault != "response" || !strings.HasPrefix(r.Error, "response too large:") {
		t.Fatalf("%+v", r)
	}
}

func TestBadBodyIsRefused(t *testing.T) {
	if _, err := webRequest("http://127.0.0.1:1", &httpRequest{Method: "GET", Path: "/", Body: "!!"}, nil); err == nil {
		t.Fatal("a body that is not base64 must be refused")
	}
}

func TestServerEnvDropsTheBridgesOwnAndSetsPort(t *testing.T) {
	env := serverEnv([]string{"PATH=/bin", "ZFAAS_LINE=/run/zfaas/line.sock", "ZFAAS_BRIDGE_CMD=[]", "PORT=1", "GREETING=old"}, map[string]string{"GREETING": "hi", "ZFAAS_FUNCTION": "f"}, 9000)
	joined := "|" + strings.Join(env, "|") + "|"
	for _, want := range []string{"|PATH=/bin|", "|GREETING=hi|", "|ZFAAS_FUNCTION=f|", "|PORT=9000|"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("missing %s in %s", want, joined)
		}
	}
	for _, gone := range []string{"ZFAAS_LINE", "ZFAAS_BRIDGE_CMD", "PORT=1|", "GREETING=old"} {
		if strings.Contains(joined, gone) {
			t.Fatalf("%s left in %s", gone, joined)
		}
	}
}

func TestReadinessSaysTheLimitOrTheExit(t *testing.T) {
	s, err := startServer([]string{"sleep", "5"}, os.Environ(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.cmd.Process.Kill()
	err = s.ready("127.0.0.1:1", 1, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not accept connections on port 1 within its readiness limit of 300ms") {
		t.Fatalf("%v", err)
	}
	s, err = startServer([]string{"sh", "-c", "echo cannot bind >&2; exit 3"}, os.Environ(), "")
	if err != nil {
		t.Fatal(err)
	}
	err = s.ready("127.0.0.1:1", 1, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited (code 3) before it listened on port 1: cannot bind") {
		t.Fatalf("%v", err)
	}
	if _, err := startServer([]string{"no-such-server"}, []string{"PATH=/bin"}, ""); err == nil || !strings.Contains(err.Error(), "is not in its PATH") {
		t.Fatalf("%v", err)
	}
}
