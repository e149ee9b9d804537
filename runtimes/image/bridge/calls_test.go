// Calls through the bridge itself (bridge.call) against a real server: several at once (loader protocol
// version 3), one cancelled while the others finish, each with its own result.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSeveralCallsAtOnceAndACancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Write([]byte(`{"path":"` + r.URL.Path + `"}`))
	}))
	defer srv.Close()
	defer close(release)
	port, _ := strconv.Atoi(srv.URL[strings.LastIndex(srv.URL, ":")+1:])
	b := &bridge{port: port, srv: &server{out: &output{tailMax: 100}, exited: make(chan struct{})}, client: &http.Client{Transport: &http.Transport{}}}
	web := func(path string) *request {
		return &request{Op: "call", ID: int64(len(path)), HTTP: &httpRequest{Method: "GET", Path: path, Headers: map[string]string{}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var slow reply
	wg.Add(1)
	go func() { defer wg.Done(); slow = b.call(ctx, web("/slow")) }()
	// The others answer while the slow one waits.
	for _, p := range []string{"/a", "/bb", "/ccc"} {
		r := b.call(context.Background(), web(p))
		if r.Ok == nil || !*r.Ok || r.HTTP == nil || r.ID != int64(len(p)) {
			t.Fatalf("%s: %+v", p, r)
		}
		raw, _ := base64.StdEncoding.DecodeString(r.HTTP.Body)
		var got map[string]string
		if err := json.Unmarshal(raw, &got); err != nil || got["path"] != p {
			t.Fatalf("%s answered %s", p, raw)
		}
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
	if slow.Ok == nil || *slow.Ok || slow.Error != cancelled || slow.ID != 5 {
		t.Fatalf("the cancelled call: %+v", slow)
	}
}
