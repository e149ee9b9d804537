// Run-once mode (`--once`, policy none): one call, its params from stdin or ZFAAS_PARAMS, its value (JSON)
// on stdout; the function's own prints go to stderr. The function is the one in ZFAAS_DIR (default: the
// working folder), its handler ZFAAS_HANDLER; the generic loader execs the function's binary for it.
package zfaasrt

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

func once(registry map[string]any) int {
	if registry == nil {
		dir := os.Getenv("ZFAAS_DIR")
		if dir == "" {
			dir, _ = os.Getwd()
		}
		bin := filepath.Join(dir, BinaryPath)
		err := syscall.Exec(bin, []string{bin, "--once"}, os.Environ())
		fmt.Fprintf(os.Stderr, "zfaas: cannot start the function's binary %s (was it built by the go runtime's dependencies step?): %v\n", bin, err)
		return 2
	}
	stdout, err := syscall.Dup(1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zfaas:", err)
		return 1
	}
	syscall.Dup3(2, 1, 0) // the function's prints go to stderr
	out := os.NewFile(uintptr(stdout), "stdout")
	raw, _ := io.ReadAll(os.Stdin)
	if len(trimSpace(raw)) == 0 {
		raw = []byte(os.Getenv("ZFAAS_PARAMS"))
	}
	if len(trimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	if !json.Valid(raw) {
		fmt.Fprintln(os.Stderr, "zfaas: params are not valid JSON")
		return 1
	}
	h, _, err := findHandler(registry, os.Getenv("ZFAAS_HANDLER"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "zfaas:", err)
		return 2
	}
	id := os.Getenv("ZFAAS_CALL")
	if id == "" {
		id = "1"
	}
	ctx, cancel := callContext(id)
	defer cancel()
	var value []byte
	if h.web != nil {
		value, err = serveDirect(ctx, h.web, raw)
	} else {
		value, err = h.invoke(ctx, raw)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		return 1
	}
	if len(value) > ResultLimit+1 {
		value = value[:ResultLimit+1]
	}
	out.Write(value)
	return 0
}

func trimSpace(b []byte) []byte {
	s := string(b)
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\n' || s[0] == '\t' || s[0] == '\r') {
		s = s[1:]
	}
	return []byte(s)
}
