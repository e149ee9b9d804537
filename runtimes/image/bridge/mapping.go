// How a call becomes an HTTP request to the image's server, and its answer a reply: pure functions, so
// that mapping_test.go checks them without a server. A web call goes as it came (method, path below the
// function, query, headers minus hop-by-hop ones, body); a JSON call is `POST /` with the params as its
// JSON body. The call's own variables (ZFAAS_CALL, ZFAAS_DEADLINE, ...) travel as X-Zfaas-* headers, since
// a running server's environment cannot change per request.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"
)

// hopByHop are the headers of one connection (RFC 9110 7.6.1): never passed on (HOP_BY_HOP).
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

// callHeaders are the call's variables as request headers: ZFAAS_CALL -> X-Zfaas-Call.
func callHeaders(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if !strings.HasPrefix(k, "ZFAAS_") {
			continue
		}
		parts := strings.Split(strings.ToLower(strings.TrimPrefix(k, "ZFAAS_")), "_")
		for i, p := range parts {
			if p != "" {
				parts[i] = strings.ToUpper(p[:1]) + p[1:]
			}
		}
		out["X-Zfaas-"+strings.Join(parts, "-")] = v
	}
	return out
}

// webRequest is a web call as a request to the server at base (http://127.0.0.1:PORT).
func webRequest(base string, h *httpRequest, env map[string]string) (*http.Request, error) {
	body, err := base64.StdEncoding.DecodeString(h.Body)
	if err != nil {
		return nil, fmt.Errorf("the request's body is not base64: %v", err)
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := base + path
	if h.Query != "" {
		url += "?" + h.Query
	}
	req, err := http.NewRequest(h.Method, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("the request cannot be made: %v", err)
	}
	for name, value := range h.Headers {
		lower := strings.ToLower(name)
		if hopByHop[lower] || lower == "content-length" {
			continue
		}
		if lower == "host" {
			req.Host = value
			continue
		}
		req.Header.Set(name, value)
	}
	if h.SourceIP != "" && req.Header.Get("X-Forwarded-For") == "" {
		req.Header.Set("X-Forwarded-For", h.SourceIP)
	}
	for k, v := range callHeaders(env) {
		req.Header.Set(k, v)
	}
	return req, nil
}

// jsonRequest is a JSON call: POST / with the params (null when none came) as the body.
func jsonRequest(base string, params json.RawMessage, env map[string]string) (*http.Request, error) {
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	req, err := http.NewRequest("POST", base+"/", bytes.NewReader(params))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for k, v := range callHeaders(env) {
		req.Header.Set(k, v)
	}
	return req, nil
}

// webAnswer is the server's response as a web call's reply: status, headers (lower case, hop-by-hop ones
// left out) and body; a body past bodyLimit fails the call as a response that could not be carried.
func webAnswer(id int64, status int, header http.Header, body []byte, logs string) reply {
	if len(body) > bodyLimit {
		return reply{Op: "result", ID: id, Ok: no(), Fault: "response",
			Error: fmt.Sprintf("response too large: the server answered %d bytes, at most %d are carried", len(body), bodyLimit), Logs: str(logs)}
	}
	headers := map[string][]string{}
	names := make([]string, 0, len(header))
	for name := range header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		lower := strings.ToLower(name)
		if hopByHop[lower] || lower == "content-length" {
			continue
		}
		headers[lower] = append(headers[lower], header[name]...)
	}
	return reply{Op: "result", ID: id, Ok: yes(), HTTP: &httpResponse{Status: status, Headers: headers,
		Body: base64.StdEncoding.EncodeToString(body)}, Logs: str(logs)}
}

// jsonAnswer is the server's response as a JSON call's reply: a 2xx body that is JSON is the result as it
// is, any other text becomes a JSON string; another status fails the call, saying what the server said.
func jsonAnswer(id int64, status int, body []byte, logs string) reply {
	if status < 200 || status > 299 {
		text := string(body)
		if len(text) > 2000 {
			text = text[:2000] + "..."
		}
		if !utf8.ValidString(text) {
			text = fmt.Sprintf("(%d bytes that are not text)", len(body))
		}
		return reply{Op: "result", ID: id, Ok: no(), Error: fmt.Sprintf("the server answered %d %s: %s", status, http.StatusText(status), strings.TrimSpace(text)), Logs: str(logs)}
	}
	trimmed := bytes.TrimSpace(body)
	var result string
	if len(trimmed) > 0 && json.Valid(trimmed) {
		var compact bytes.Buffer
		if json.Compact(&compact, trimmed) == nil {
			result = compact.String()
		} else {
			result = string(trimmed)
		}
	} else if len(trimmed) == 0 {
		result = "null"
	} else {
		encoded, _ := json.Marshal(string(body))
		result = string(encoded)
	}
	r := reply{Op: "result", ID: id, Ok: yes(), Logs: str(logs)}
	if len(result) > resultLimit {
		r.Result = str(result[:resultLimit])
		r.Truncated = true
	} else {
		r.Result = str(result)
	}
	return r
}
