// zfaas-go-build: the go runtime's dependencies step (run at deploy, in the function's folder, inside the
// zfaas/go image). It compiles the function's package together with a generated main that registers the
// package's functions and variables by name and runs the zfaas Go loader (zfaasrt), into
// .zfaas/function in the folder; the handler setting picks one of them when the function loads. The
// package is built in a copy (the folder gains only the binary), offline: the standard library and what
// the function vendors. A compile error fails the step with the compiler's own words.
//
//	zfaas-go-build [-src DIR] [-lib DIR] [-out FILE]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

func main() {
	src := flag.String("src", ".", "the function's folder")
	lib := flag.String("lib", "/opt/zfaas/go/zfaasrt", "the zfaasrt sources")
	seed := flag.String("cache", "/opt/zfaas/gocache", "a build cache to start from (the image's, made when it was built)")
	out := flag.String("out", "", "the binary (default SRC/.zfaas/function)")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join(*src, ".zfaas", "function")
	}
	if err := build(*src, *lib, *out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "zfaas-go-build:", err)
		os.Exit(1)
	}
}

type pkg struct {
	name          string
	symbols       []string // functions and variables the generated main registers
	hasMain       bool
	lambdaContext bool // the function vendors aws-lambda-go's lambdacontext: calls' contexts carry one
}

const lambdaContextPkg = "github.com/aws/aws-lambda-go/lambdacontext"

func build(src, lib, out, seed string) error {
	p, err := parse(src)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "zfaas-go-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := copyTree(src, work); err != nil {
		return err
	}
	module, err := modulePath(work)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(work, "vendor", filepath.FromSlash(lambdaContextPkg))); err == nil {
		p.lambdaContext = true
	}
	if err := copyLib(lib, filepath.Join(work, "internal", "zfaasrt")); err != nil {
		return err
	}
	target := "."
	main := generated(p, module)
	if p.name == "main" {
		err = os.WriteFile(filepath.Join(work, "zz_zfaas_main.go"), []byte(main), 0o644)
	} else {
		target = "./zfaasmain"
		if err = os.MkdirAll(filepath.Join(work, "zfaasmain"), 0o755); err == nil {
			err = os.WriteFile(filepath.Join(work, "zfaasmain", "main.go"), []byte(main), 0o644)
		}
	}
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", abs, target)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOPROXY=off", "GOFLAGS="+goflags(work), "GOTOOLCHAIN=local")
	if cache := seededCache(seed); cache != "" {
		cmd.Env = append(cmd.Env, "GOCACHE="+cache)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the function does not compile (go build: %v)", err)
	}
	fmt.Fprintf(os.Stderr, "zfaas-go-build: built package %s (%s) into %s\n", p.name, strings.Join(p.symbols, ", "), out)
	return nil
}

// The package in the folder's .go files (tests left out): its name and what can be a handler.
func parse(src string) (*pkg, error) {
	files, err := filepath.Glob(filepath.Join(src, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	p := &pkg{}
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("the function does not compile:\n%v", err)
		}
		if p.name != "" && file.Name.Name != p.name {
			return nil, fmt.Errorf("the function's folder holds two packages, %s and %s: a function is one package", p.name, file.Name.Name)
		}
		p.name = file.Name.Name
		main := p.name == "main"
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil || (d.Type.TypeParams != nil && len(d.Type.TypeParams.List) > 0) {
					continue
				}
				n := d.Name.Name
				if n == "main" && main {
					p.hasMain = true
				}
				if n != "main" && n != "init" && n != "_" && (main || ast.IsExported(n)) && !seen[n] {
					seen[n] = true
					p.symbols = append(p.symbols, n)
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, s := range d.Specs {
					for _, id := range s.(*ast.ValueSpec).Names {
						n := id.Name
						if n != "_" && (main || ast.IsExported(n)) && !seen[n] {
							seen[n] = true
							p.symbols = append(p.symbols, n)
						}
					}
				}
			}
		}
	}
	if p.name == "" {
		return nil, fmt.Errorf("the function's folder has no .go file: a Go function is a package in the folder's top level")
	}
	sort.Strings(p.symbols)
	return p, nil
}

// The main that runs the loader with the package's symbols: in package main a file of its own whose init
// runs last (its name sorts last) and never returns, so that the package's own main, if any, never runs.
func generated(p *pkg, module string) string {
	var b strings.Builder
	b.WriteString("// Generated by zfaas-go-build: runs the zfaas loader with this package's functions.\n")
	ref := ""
	b.WriteString("package main\n\nimport (\n")
	if p.name != "main" {
		fmt.Fprintf(&b, "\tfn %q\n", module)
		ref = "fn."
	}
	fmt.Fprintf(&b, "\tzfaasrt %q\n", module+"/internal/zfaasrt")
	if p.lambdaContext {
		fmt.Fprintf(&b, "\tzfaascontext \"context\"\n\tzfaaslambdacontext %q\n", lambdaContextPkg)
	}
	b.WriteString(")\n\n")
	if p.lambdaContext {
		b.WriteString(`func init() {
	zfaasrt.WrapContext = func(ctx zfaascontext.Context, id, name string) zfaascontext.Context {
		zfaaslambdacontext.FunctionName = name
		return zfaaslambdacontext.NewContext(ctx, &zfaaslambdacontext.LambdaContext{AwsRequestID: id, InvokedFunctionArn: "arn:aws:lambda:zfaas:000000000000:function:" + name})
	}
}

`)
	}
	b.WriteString("var zfaasRegistry = map[string]any{\n")
	for _, s := range p.symbols {
		fmt.Fprintf(&b, "\t%q: %s%s,\n", s, ref, s)
	}
	b.WriteString("}\n\n")
	if p.name == "main" {
		b.WriteString("func init() { zfaasrt.Main(zfaasRegistry) }\n")
		if !p.hasMain {
			b.WriteString("\nfunc main() {}\n")
		}
	} else {
		b.WriteString("func main() { zfaasrt.Main(zfaasRegistry) }\n")
	}
	return b.String()
}

var moduleLine = regexp.MustCompile(`^module\s+"?([^"\s]+)"?`)

// The module's path from go.mod; without one, a go.mod for module "function" is written.
func modulePath(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if os.IsNotExist(err) {
		return "function", os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module function\n\ngo 1.19\n"), 0o644)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m := moduleLine.FindStringSubmatch(strings.TrimSpace(s.Text())); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("go.mod has no module line")
}

// A writable copy of the image's build cache, which holds the standard library compiled as functions are
// (without cgo; Debian's precompiled one has it): a function's build compiles only its own packages. ""
// (go's own cache) where GOCACHE is set or there is no seed.
func seededCache(seed string) string {
	if os.Getenv("GOCACHE") != "" {
		return ""
	}
	if _, err := os.Stat(seed); err != nil {
		return ""
	}
	cache := filepath.Join(os.TempDir(), "zfaas-gocache")
	if _, err := os.Stat(cache); err == nil {
		return cache
	}
	if err := copyTree(seed, cache); err != nil {
		os.RemoveAll(cache)
		return ""
	}
	return cache
}

// Vendored modules are used as they are; nothing is fetched (containers have no registry).
func goflags(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "vendor", "modules.txt")); err == nil {
		return "-mod=vendor"
	}
	return "-mod=mod"
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == ".zfaas" || rel == ".git" {
			return filepath.SkipDir
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, to)
		}
		return nil // links and others: a function's package is regular files
	})
}

func copyLib(lib, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(lib, "*.go"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no zfaasrt sources in %s", lib)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			if err := copyFile(f, filepath.Join(dst, filepath.Base(f))); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
