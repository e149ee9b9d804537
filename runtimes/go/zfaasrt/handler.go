// A Go function's handler, adapted by reflection as AWS Lambda's Go runtime does: a func taking
// (), (event), (ctx) or (ctx, event) and returning (), (error), (value) or (value, error), where ctx is a
// context.Context and event any type encoding/json can fill; or an http.Handler, or a
// func(http.ResponseWriter, *http.Request) (Cloud Functions' and OpenFaaS's golang-middleware form).
package zfaasrt

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
)

var (
	contextType = reflect.TypeOf((*context.Context)(nil)).Elem()
	errorType   = reflect.TypeOf((*error)(nil)).Elem()
)

type handler struct {
	web   http.Handler // an HTTP handler; the others are nil for one
	fn    reflect.Value
	ctx   bool         // takes a context first
	event reflect.Type // the event's type; nil without one
	value bool         // returns a value
	err   bool         // returns an error (last)
}

// The handler `name` names in the function's registry: the part after the last "." of the setting
// ("main.go.Handler", "Handler"); without a setting, Handler, or the function's one registered symbol.
func findHandler(registry map[string]any, name string) (*handler, string, error) {
	if i := strings.LastIndex(name, "."); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		if _, ok := registry["Handler"]; ok || len(registry) != 1 {
			name = "Handler"
		} else {
			for k := range registry {
				name = k
			}
		}
	}
	v, ok := registry[name]
	if !ok {
		names := make([]string, 0, len(registry))
		for k := range registry {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, name, fmt.Errorf("the function's package has no function or variable %s (it has: %s); set the handler to one of them", name, strings.Join(names, ", "))
	}
	h, err := adapt(v)
	if err != nil {
		return nil, name, fmt.Errorf("%s: %w", name, err)
	}
	return h, name, nil
}

func adapt(v any) (*handler, error) {
	switch h := v.(type) {
	case http.Handler:
		return &handler{web: h}, nil
	case func(http.ResponseWriter, *http.Request):
		return &handler{web: http.HandlerFunc(h)}, nil
	}
	fn := reflect.ValueOf(v)
	if !fn.IsValid() || fn.Kind() != reflect.Func {
		return nil, fmt.Errorf("is a %T, not a function or an http.Handler", v)
	}
	if fn.IsNil() {
		return nil, fmt.Errorf("is a nil function")
	}
	t := fn.Type()
	h := &handler{fn: fn}
	if t.IsVariadic() {
		return nil, fmt.Errorf("takes variadic arguments: a handler takes (ctx context.Context, event T), (event T), (ctx) or nothing")
	}
	switch n := t.NumIn(); {
	case n > 2:
		return nil, fmt.Errorf("takes %d arguments: a handler takes (ctx context.Context, event T), (event T), (ctx) or nothing", n)
	case n == 2:
		if !t.In(0).Implements(contextType) {
			return nil, fmt.Errorf("takes two arguments, but the first is a %s, not a context.Context", t.In(0))
		}
		h.ctx, h.event = true, t.In(1)
	case n == 1:
		if t.In(0).Implements(contextType) {
			h.ctx = true
		} else {
			h.event = t.In(0)
		}
	}
	switch n := t.NumOut(); {
	case n > 2:
		return nil, fmt.Errorf("returns %d values: a handler returns (R, error), (R), (error) or nothing", n)
	case n == 2:
		if !t.Out(1).Implements(errorType) {
			return nil, fmt.Errorf("returns two values, but the second is a %s, not an error", t.Out(1))
		}
		h.value, h.err = true, true
	case n == 1:
		if t.Out(0).Implements(errorType) && t.Out(0).Kind() == reflect.Interface {
			h.err = true
		} else {
			h.value = true
		}
	}
	return h, nil
}

// A panic in the function, as an error with its stack.
type panicked struct {
	value any
	stack string
}

func (p panicked) Error() string { return fmt.Sprintf("panic: %v\n\n%s", p.value, p.stack) }

// Calls a func handler with the event (JSON); its value, encoded as JSON.
func (h *handler) invoke(ctx context.Context, event []byte) (out []byte, err error) {
	var args []reflect.Value
	if h.ctx {
		args = append(args, reflect.ValueOf(ctx))
	}
	if h.event != nil {
		p := reflect.New(h.event)
		if len(event) > 0 {
			if e := json.Unmarshal(event, p.Interface()); e != nil {
				return nil, fmt.Errorf("the event does not fit the handler's %s: %v", h.event, e)
			}
		}
		args = append(args, p.Elem())
	}
	defer func() {
		if p := recover(); p != nil {
			err = panicked{p, string(debug.Stack())}
		}
	}()
	outs := h.fn.Call(args)
	if h.err {
		if e := outs[len(outs)-1]; !e.IsNil() {
			return nil, e.Interface().(error)
		}
	}
	if !h.value {
		return []byte("null"), nil
	}
	return marshal(outs[0].Interface())
}

// JSON as the function's value: HTML characters left as they are.
func marshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

func stackNow() string { return string(debug.Stack()) }
