// The conformance suite's json function (runtimes/conformance/README.md), in the Lambda style.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

type Params struct {
	N    *float64 `json:"n"`
	Fail bool     `json:"fail"`
	Ms   float64  `json:"ms"`
}

type Answer struct {
	N        *float64 `json:"n"`
	Call     *string  `json:"call"`
	Greeting *string  `json:"greeting"`
}

func env(name string) *string {
	if v, ok := os.LookupEnv(name); ok {
		return &v
	}
	return nil
}

func Handler(ctx context.Context, p Params) (Answer, error) {
	if p.N != nil {
		fmt.Printf("echo %v\n", *p.N)
	}
	if p.Ms > 0 {
		time.Sleep(time.Duration(p.Ms * float64(time.Millisecond)))
	}
	if p.Fail {
		return Answer{}, errors.New("boom on purpose")
	}
	return Answer{N: p.N, Call: env("ZFAAS_CALL"), Greeting: env("GREETING")}, nil
}
