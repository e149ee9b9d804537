// What the build step registers of a package, and the main it generates for it.
package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir string, files map[string]string) {
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseNamedPackageRegistersExportedFuncsAndVars(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"api.go":      "package api\nimport \"net/http\"\nvar Mux http.Handler = http.NewServeMux()\nfunc Serve(http.ResponseWriter, *http.Request) {}\nfunc helper() {}\nfunc Map[T any](t T) T { return t }\ntype T struct{}\nfunc (T) M() {}\n",
		"api_test.go": "package api\nfunc TestX() {}\n",
	})
	p, err := parse(dir)
	if err != nil || p.name != "api" || strings.Join(p.symbols, ",") != "Mux,Serve" {
		t.Fatalf("got %+v, %v", p, err)
	}
	m := generated(p, "example.com/api")
	for _, want := range []string{`fn "example.com/api"`, `"Serve": fn.Serve`, "func main() { zfaasrt.Main(zfaasRegistry) }"} {
		if !strings.Contains(m, want) {
			t.Errorf("the generated main has no %q:\n%s", want, m)
		}
	}
}

func TestParsePackageMainRunsTheLoaderFromInit(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"main.go": "package main\nfunc handler() {}\nfunc main() {}\n"})
	p, err := parse(dir)
	if err != nil || !p.hasMain || strings.Join(p.symbols, ",") != "handler" {
		t.Fatalf("got %+v, %v", p, err)
	}
	m := generated(p, "function")
	if !strings.Contains(m, "func init() { zfaasrt.Main(zfaasRegistry) }") || strings.Contains(m, "func main()") {
		t.Fatalf("want init running the loader and the package's own main kept:\n%s", m)
	}
}

func TestParseRefusesTwoPackagesAndNoGoFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := parse(dir); err == nil || !strings.Contains(err.Error(), "no .go file") {
		t.Fatalf("an empty folder: got %v", err)
	}
	write(t, dir, map[string]string{"a.go": "package a\n", "b.go": "package b\n"})
	if _, err := parse(dir); err == nil || !strings.Contains(err.Error(), "two packages") {
		t.Fatalf("two packages: got %v", err)
	}
}

func TestGeneratedMainPutsLambdaContextInWhenVendored(t *testing.T) {
	m := generated(&pkg{name: "main", symbols: []string{"Handler"}, lambdaContext: true}, "function")
	hook := strings.Index(m, "zfaasrt.WrapContext =")
	run := strings.Index(m, "func init() { zfaasrt.Main(zfaasRegistry) }")
	if !strings.Contains(m, `zfaaslambdacontext "github.com/aws/aws-lambda-go/lambdacontext"`) || hook < 0 || run < hook {
		t.Fatalf("want the lambdacontext hook set before the loader runs:\n%s", m)
	}
	if strings.Contains(generated(&pkg{name: "main", symbols: []string{"Handler"}}, "function"), "lambdacontext") {
		t.Fatal("a function that does not vendor lambdacontext gets none")
	}
}
