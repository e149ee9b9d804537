// The loader protocol's messages as the bridge reads and writes them (protocol/loader.ts is the
// specification; docs/loader-protocol.md explains it). Only what the bridge uses is declared: a request
// is one JSON object a line, a reply another.
package main

import "encoding/json"

// protocolVersion is the loader protocol version the bridge speaks (LOADER_PROTOCOL).
const protocolVersion = 5

// resultLimit and logLimit are RESULT_LIMIT and LOG_LIMIT: the characters of a result and of a call's
// logs a loader keeps.
const resultLimit = 6 * 1024 * 1024
const logLimit = 64 * 1024

// bodyLimit is the most bytes of a web response the bridge carries back (its base64 fits a line).
const bodyLimit = 6 * 1024 * 1024

// request is any message from the node.
type request struct {
	Op     string            `json:"op"`
	ID     int64             `json:"id,omitempty"`
	Params json.RawMessage   `json:"params,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
	HTTP   *httpRequest      `json:"http,omitempty"`
	Dir    string            `json:"dir,omitempty"`
	Files  map[string]string `json:"files,omitempty"`
	Keep   []string          `json:"keep,omitempty"`
	// Concurrency is how many calls the node may send before their results (load, version 3).
	Concurrency int `json:"concurrency,omitempty"`
}

// cancelled is a cancelled call's error (CANCELLED).
const cancelled = "cancelled"

// httpRequest is a web call as the node received it (HttpRequestSchema).
type httpRequest struct {
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Query    string            `json:"query"`
	Headers  map[string]string `json:"headers"`
	Body     string            `json:"body"`
	SourceIP string            `json:"sourceIp"`
}

// httpResponse is the answer a server chose (HttpResponseSchema).
type httpResponse struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// reply is any message to the node; empty fields are left out.
type reply struct {
	Op        string        `json:"op"`
	V         int           `json:"v,omitempty"`
	Pid       int           `json:"pid,omitempty"`
	ID        int64         `json:"id,omitempty"`
	Ok        *bool         `json:"ok,omitempty"`
	Result    *string       `json:"result,omitempty"`
	Error     string        `json:"error,omitempty"`
	Fault     string        `json:"fault,omitempty"`
	Logs      *string       `json:"logs,omitempty"`
	Truncated bool          `json:"truncated,omitempty"`
	HTTP      *httpResponse `json:"http,omitempty"`
	Took      *int64        `json:"took,omitempty"` // a result's µs from reading the call to the result (version 5)
}

func yes() *bool           { t := true; return &t }
func no() *bool            { f := false; return &f }
func str(s string) *string { return &s }
