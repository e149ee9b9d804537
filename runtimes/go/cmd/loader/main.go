// The go image's generic loader (a stem cell): it says hello, and on `load` execs the function's binary
// that the runtime's dependencies step built (zfaasrt.BinaryPath in the function's folder).
package main

import "zfaas.dev/go/zfaasrt"

func main() { zfaasrt.Main(nil) }
