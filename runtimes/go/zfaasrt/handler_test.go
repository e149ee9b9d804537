// The handler shapes the loader accepts and refuses, the format each runs in, and how a handler is found
// by its setting: the decisions of handler.go and serve.go, without a line.
package zfaasrt

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
)

type order struct {
	Qty int `json:"qty"`
}

func TestAdaptTakesLambdaShapes(t *testing.T) {
	ok := map[string]any{
		"ctx, event -> value, error": func(context.Context, order) (int, error) { return 0, nil },
		"event -> value, error":      func(order) (int, error) { return 0, nil },
		"ctx -> error":               func(context.Context) error { return nil },
		"nothing":                    func() {},
		"event -> value":             func(map[string]any) string { return "" },
	}
	for name, fn := range ok {
		if _, err := adapt(fn); err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}

func TestAdaptRefusesOtherShapesSayingWhy(t *testing.T) {
	bad := map[string]struct {
		fn   any
		says string
	}{
		"two args, no ctx":   {func(int, int) {}, "not a context.Context"},
		"three args":         {func(context.Context, int, int) {}, "takes 3 arguments"},
		"second not error":   {func() (int, int) { return 0, 0 }, "not an error"},
		"variadic":           {func(...int) {}, "variadic"},
		"not a function":     {42, "not a function or an http.Handler"},
		"three return value": {func() (int, int, error) { return 0, 0, nil }, "returns 3 values"},
	}
	for name, c := range bad {
		_, err := adapt(c.fn)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, c.says)
		}
	}
}

func TestInvokeFillsTheEventAndReturnsTheValueOrTheError(t *testing.T) {
	h, _ := adapt(func(_ context.Context, o order) (map[string]int, error) {
		if o.Qty < 0 {
			return nil, errors.New("negative")
		}
		return map[string]int{"total": 3 * o.Qty}, nil
	})
	out, err := h.invoke(context.Background(), []byte(`{"qty":2}`))
	if err != nil || string(out) != `{"total":6}` {
		t.Fatalf("got %s, %v", out, err)
	}
	if _, err := h.invoke(context.Background(), []byte(`{"qty":-1}`)); err == nil || err.Error() != "negative" {
		t.Fatalf("want the handler's error, got %v", err)
	}
	if _, err := h.invoke(context.Background(), []byte(`{"qty":"two"}`)); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("want an event that does not fit, got %v", err)
	}
	p, _ := adapt(func() (int, error) { panic("oops") })
	if _, err := p.invoke(context.Background(), nil); err == nil || !strings.HasPrefix(err.Error(), "panic: oops") {
		t.Fatalf("want the panic as an error, got %v", err)
	}
}

func TestFormats(t *testing.T) {
	fn, _ := adapt(func() {})
	web, _ := adapt(func(http.ResponseWriter, *http.Request) {})
	cases := []struct {
		h           *handler
		asked, want string
	}{
		{fn, "auto", "json"}, {fn, "lambda", "lambda"}, {fn, "gcf", ""},
		{web, "auto", "gcf"}, {web, "openfaas", "openfaas"}, {web, "lambda", ""},
	}
	for _, c := range cases {
		got, err := chooseFormat(c.h, c.asked)
		if got != c.want || (c.want == "") != (err != nil) {
			t.Errorf("%v asked %s: got %q, %v; want %q", c.h.web != nil, c.asked, got, err, c.want)
		}
	}
}

func TestFindHandlerBySetting(t *testing.T) {
	reg := map[string]any{"Handler": func() {}, "Other": func() {}}
	for _, setting := range []string{"", "Handler", "main.go.Handler"} {
		if _, name, err := findHandler(reg, setting); err != nil || name != "Handler" {
			t.Errorf("%q: got %s, %v", setting, name, err)
		}
	}
	if _, name, err := findHandler(map[string]any{"only": func() {}}, ""); err != nil || name != "only" {
		t.Errorf("the one symbol: got %s, %v", name, err)
	}
	if _, _, err := findHandler(reg, "api.Nope"); err == nil || !strings.Contains(err.Error(), "it has: Handler, Other") {
		t.Errorf("want the names it has, got %v", err)
	}
}

func TestALoadReplacesTheLastLoadsVariables(t *testing.T) {
	os.Unsetenv("ZFAAS_TEST_A")
	s := &server{registry: map[string]any{"Handler": func() {}}}
	dir := "/nowhere"
	if r := s.load(&request{Dir: &dir, Env: map[string]string{"ZFAAS_TEST_A": "1"}}); !r.OK {
		t.Fatal(r.Error)
	}
	if os.Getenv("ZFAAS_TEST_A") != "1" {
		t.Fatal("the load's variable is not set")
	}
	s.load(&request{Dir: &dir, Env: map[string]string{}})
	if _, ok := os.LookupEnv("ZFAAS_TEST_A"); ok {
		t.Fatal("the last load's variable is still set")
	}
}
