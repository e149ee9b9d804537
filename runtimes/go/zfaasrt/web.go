// Web calls: in the lambda format the request as an API Gateway HTTP API event (payload 2.0) and the
// response API Gateway makes of the handler's value; in the gcf and openfaas formats the request as a
// *http.Request to an http.Handler and what it wrote as the response. A response shaped wrongly is a
// responseError, whose message starts with "malformed response:" (the node answers its caller 502).
package zfaasrt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

type responseError struct{ why string }

func (e responseError) Error() string { return e.why }

func malformed(format string, args ...any) error {
	return responseError{"malformed response: " + fmt.Sprintf(format, args...)}
}

func functionName() string {
	if n := os.Getenv("ZFAAS_FUNCTION"); n != "" {
		return n
	}
	return "function"
}

var hostPort = regexp.MustCompile(`:\d+$`)

// The API Gateway HTTP API event (payload 2.0) of a web request.
func lambdaEvent(h *httpRequest, requestID string) ([]byte, error) {
	headers := map[string]string{}
	var cookies []string
	for k, v := range h.Headers {
		if k == "cookie" {
			for _, c := range strings.Split(v, ";") {
				if c = strings.TrimSpace(c); c != "" {
					cookies = append(cookies, c)
				}
			}
		} else {
			headers[k] = v
		}
	}
	host := "localhost"
	if v, ok := headers["host"]; ok {
		host = hostPort.ReplaceAllString(v, "")
	}
	ev := map[string]any{
		"version":        "2.0",
		"routeKey":       "$default",
		"rawPath":        h.Path,
		"rawQueryString": h.Query,
		"headers":        headers,
		"requestContext": map[string]any{
			"accountId":    "000000000000",
			"apiId":        functionName(),
			"domainName":   host,
			"domainPrefix": strings.Split(host, ".")[0],
			"http": map[string]any{
				"method":    h.Method,
				"path":      h.Path,
				"protocol":  "HTTP/1.1",
				"sourceIp":  h.SourceIP,
				"userAgent": headers["user-agent"],
			},
			"requestId": requestID,
			"routeKey":  "$default",
			"stage":     "$default",
			"timeEpoch": time.Now().UnixMilli(),
		},
		"isBase64Encoded": false,
	}
	if len(cookies) > 0 {
		ev["cookies"] = cookies
	}
	if h.Query != "" {
		q := map[string]string{} // name=a&name=b -> "a,b", as API Gateway joins repeated parameters
		for _, pair := range strings.Split(h.Query, "&") {
			if pair == "" {
				continue
			}
			k, v, _ := strings.Cut(pair, "=")
			k, _ = url.QueryUnescape(k)
			v, _ = url.QueryUnescape(v)
			if old, ok := q[k]; ok {
				v = old + "," + v
			}
			q[k] = v
		}
		ev["queryStringParameters"] = q
	}
	body, err := base64.StdEncoding.DecodeString(h.Body)
	if err != nil {
		return nil, badRequest{"http.body: not base64"}
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev["body"] = string(body)
		} else {
			ev["body"] = h.Body
			ev["isBase64Encoded"] = true
		}
	}
	return marshal(ev)
}

// The response API Gateway makes of a handler's value (JSON): one with statusCode is the response,
// another value the body of a 200 JSON response.
func lambdaResponse(value []byte) (*httpResponse, error) {
	var r map[string]json.RawMessage
	if json.Unmarshal(value, &r) != nil || r["statusCode"] == nil {
		body := value
		var s string
		if json.Unmarshal(value, &s) == nil {
			body = []byte(s)
		}
		return &httpResponse{Status: 200, Headers: map[string]any{"content-type": "application/json"}, Body: base64.StdEncoding.EncodeToString(body)}, nil
	}
	var status float64
	if json.Unmarshal(r["statusCode"], &status) != nil || status != float64(int(status)) || status < 100 || status > 599 {
		return nil, malformed("statusCode must be an integer from 100 to 599, got %s", r["statusCode"])
	}
	out := &httpResponse{Status: int(status), Headers: map[string]any{}}
	if raw, ok := r["headers"]; ok && string(raw) != "null" {
		var hs map[string]any
		if json.Unmarshal(raw, &hs) != nil {
			return nil, malformed("headers must be an object, got %s", raw)
		}
		for name, v := range hs {
			var value string
			switch x := v.(type) {
			case string:
				value = x
			case float64, bool:
				value = fmt.Sprint(x)
			default:
				return nil, malformed("header %q must be a string or a number, got %v", name, v)
			}
			if err := checkHeader(name, value); err != nil {
				return nil, err
			}
			out.Headers[strings.ToLower(name)] = value
		}
	}
	if raw, ok := r["cookies"]; ok && string(raw) != "null" {
		var cookies []string
		if json.Unmarshal(raw, &cookies) != nil {
			return nil, malformed("cookies must be an array of strings, got %s", raw)
		}
		if len(cookies) > 0 {
			out.Headers["set-cookie"] = cookies
		}
	}
	var body []byte
	if raw, ok := r["body"]; ok && string(raw) != "null" {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, malformed("body must be a string, got %s", raw)
		}
		var b64 bool
		json.Unmarshal(r["isBase64Encoded"], &b64)
		if b64 {
			d, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, malformed("body is not base64 although isBase64Encoded is true")
			}
			body = d
		} else {
			body = []byte(s)
		}
	}
	out.Body = base64.StdEncoding.EncodeToString(body)
	return out, nil
}

func checkHeader(name, value string) error {
	if !headerToken.MatchString(name) {
		return malformed("header name %q is not a valid token", name)
	}
	if strings.ContainsAny(value, "\r\n") {
		return malformed("header %q contains CR or LF", name)
	}
	return nil
}

// An http.Handler serving one request; what it wrote, as the response.
func serveHTTP(ctx context.Context, hh http.Handler, h *httpRequest) (resp *httpResponse, err error) {
	body, err := base64.StdEncoding.DecodeString(h.Body)
	if err != nil {
		return nil, badRequest{"http.body: not base64"}
	}
	target := h.Path
	if target == "" {
		target = "/"
	}
	if h.Query != "" {
		target += "?" + h.Query
	}
	req, err := http.NewRequestWithContext(ctx, h.Method, "http://localhost"+target, bytes.NewReader(body))
	if err != nil {
		return nil, badRequest{"http: " + err.Error()}
	}
	req.RequestURI = target
	req.RemoteAddr = h.SourceIP + ":0"
	for k, v := range h.Headers {
		if k == "host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	defer func() {
		if p := recover(); p != nil {
			err = panicked{p, stackNow()}
		}
	}()
	hh.ServeHTTP(rec, req)
	res := rec.Result()
	if rec.Body.Len() > ResultLimit {
		return nil, responseError{fmt.Sprintf("response too large: its body is %d bytes, at most %d", rec.Body.Len(), ResultLimit)}
	}
	resp = &httpResponse{Status: res.StatusCode, Headers: map[string]any{}, Body: base64.StdEncoding.EncodeToString(rec.Body.Bytes())}
	if res.StatusCode < 100 || res.StatusCode > 599 {
		return nil, malformed("status %d is not from 100 to 599", res.StatusCode)
	}
	for name, values := range res.Header {
		for _, v := range values {
			if err := checkHeader(name, v); err != nil {
				return nil, err
			}
		}
		if len(values) == 1 {
			resp.Headers[strings.ToLower(name)] = values[0]
		} else if len(values) > 1 {
			resp.Headers[strings.ToLower(name)] = values
		}
	}
	return resp, nil
}

// A call without a web request to an http.Handler: params POSTed to "/" as JSON; the body is the value,
// and a status from 400 up fails the call.
func serveDirect(ctx context.Context, hh http.Handler, params []byte) ([]byte, error) {
	if len(params) == 0 {
		params = []byte("null")
	}
	r, err := serveHTTP(ctx, hh, &httpRequest{Method: "POST", Path: "/", Headers: map[string]string{"content-type": "application/json"}, Body: base64.StdEncoding.EncodeToString(params)})
	if err != nil {
		return nil, err
	}
	body, _ := base64.StdEncoding.DecodeString(r.Body)
	if r.Status >= 400 {
		return nil, fmt.Errorf("the function answered %d: %s", r.Status, cut(string(body), 2000))
	}
	return marshal(string(body))
}
