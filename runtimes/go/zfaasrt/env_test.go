// A call's variables are the call's only, and setting them at every call does not grow the process.
package zfaasrt

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestCallVariablesAreTheCallsOnlyAndDoNotGrowTheProcess(t *testing.T) {
	os.Setenv("ZFAAS_TEST_KEPT", "load")
	defer os.Unsetenv("ZFAAS_TEST_KEPT")
	call := func(i int) {
		before := applyEnv(map[string]string{"ZFAAS_TEST_CALL": strconv.Itoa(i), "ZFAAS_TEST_KEPT": "call", "ZFAAS_TEST_DEADLINE": "1"})
		if os.Getenv("ZFAAS_TEST_CALL") != strconv.Itoa(i) || os.Getenv("ZFAAS_TEST_KEPT") != "call" {
			t.Fatalf("call %d does not see its variables", i)
		}
		restoreEnv(before)
	}
	for i := 0; i < 10000; i++ {
		call(i)
	}
	h0 := heap()
	for i := 0; i < 300000; i++ {
		call(i)
	}
	// Without the rebuild: two blank entries a call, 600,000 of 16 bytes (9.6 MB).
	if grew := int64(heap()) - int64(h0); grew > 1<<20 {
		t.Fatalf("300,000 calls grew the heap by %d bytes", grew)
	}
	if _, ok := os.LookupEnv("ZFAAS_TEST_CALL"); ok {
		t.Fatal("a call's variable outlived the call")
	}
	if os.Getenv("ZFAAS_TEST_KEPT") != "load" {
		t.Fatal("a load's variable was not put back after a call")
	}
}
