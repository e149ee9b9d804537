// The conformance suite's web function (runtimes/conformance/README.md): an API Gateway HTTP API event in,
// a response out, with types of its own (aws-lambda-go's events package is not needed).
package web

import "context"

type Request struct {
	RawPath               string            `json:"rawPath"`
	QueryStringParameters map[string]string `json:"queryStringParameters"`
}

type Response struct {
	StatusCode any               `json:"statusCode"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
}

func Handler(_ context.Context, r Request) (Response, error) {
	if r.RawPath == "/bad" {
		return Response{StatusCode: "abc"}, nil
	}
	name := r.QueryStringParameters["name"]
	if name == "" {
		name = "nobody"
	}
	return Response{StatusCode: 201, Headers: map[string]string{"content-type": "text/plain", "x-path": r.RawPath}, Body: "hello " + name}, nil
}
