// The web formats' mappings: the response API Gateway makes of a value, and an http.Handler's answer.
package zfaasrt

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

func TestLambdaResponse(t *testing.T) {
	r, err := lambdaResponse([]byte(`{"statusCode":201,"headers":{"X-A":"1"},"cookies":["a=1"],"body":"hi"}`))
	if err != nil || r.Status != 201 || r.Headers["x-a"] != "1" || r.Body != base64.StdEncoding.EncodeToString([]byte("hi")) {
		t.Fatalf("got %+v, %v", r, err)
	}
	if c, _ := r.Headers["set-cookie"].([]string); len(c) != 1 || c[0] != "a=1" {
		t.Fatalf("cookies: got %v", r.Headers["set-cookie"])
	}
	plain, _ := lambdaResponse([]byte(`{"n":1}`))
	if plain.Status != 200 || plain.Headers["content-type"] != "application/json" {
		t.Fatalf("a plain value: got %+v", plain)
	}
	for _, bad := range []string{`{"statusCode":"abc"}`, `{"statusCode":99}`, `{"statusCode":200,"headers":{"a b":"x"}}`, `{"statusCode":200,"headers":{"a":"x\r\ny"}}`, `{"statusCode":200,"body":"!","isBase64Encoded":true}`} {
		if _, err := lambdaResponse([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "malformed response:") {
			t.Errorf("%s: got %v", bad, err)
		}
	}
}

func TestServeHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(202)
		w.Write([]byte(r.Method + " " + r.URL.Path + " " + r.URL.Query().Get("q") + " " + r.Header.Get("X-T") + " " + r.Host))
	})
	resp, err := serveHTTP(context.Background(), h, &httpRequest{Method: "PUT", Path: "/a", Query: "q=1", Headers: map[string]string{"x-t": "t", "host": "h.test"}, Body: ""})
	body, _ := base64.StdEncoding.DecodeString(resp.Body)
	if err != nil || resp.Status != 202 || string(body) != "PUT /a 1 t h.test" {
		t.Fatalf("got %+v %q, %v", resp, body, err)
	}
	if c, _ := resp.Headers["set-cookie"].([]string); len(c) != 2 {
		t.Fatalf("repeated headers: got %v", resp.Headers["set-cookie"])
	}
	if _, err := serveDirect(context.Background(), http.NotFoundHandler(), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "answered 404") {
		t.Fatalf("a direct call answered 404: got %v", err)
	}
}
