// The `secrets` request: the function's secrets as files in a tmpfs, replaced whole, never half-written.
package zfaasrt

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The `secrets` request (protocol/loader.ts, "Secrets"): each value a file (0400) written to a temporary
// name and renamed over the old one; files not in `keep` removed; the folder 0500 between writes.
func setSecrets(req *request) (any, error) {
	if req.Dir == nil || !strings.HasPrefix(*req.Dir, "/") {
		return nil, badRequest{"secrets: dir must be an absolute path"}
	}
	keep := map[string]bool{}
	for _, n := range req.Keep {
		if !secretName.MatchString(n) {
			return nil, badRequest{"secrets: keep: " + strconv.Quote(n) + " is not a secret name"}
		}
		keep[n] = true
	}
	values := map[string][]byte{}
	for n, v := range req.Files {
		if !keep[n] {
			return nil, badRequest{"secrets: files: " + strconv.Quote(n) + " is not in keep"}
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if !base64Re.MatchString(v) || err != nil {
			return nil, badRequest{"secrets: files: " + n + " is not base64"}
		}
		values[n] = b
	}
	dir := *req.Dir
	err := func() error {
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
		defer os.Chmod(dir, 0o500)
		for n, b := range values {
			tmp := filepath.Join(dir, "."+n+".tmp") // a name never starts with a dot
			os.Remove(tmp)
			if err := os.WriteFile(tmp, b, 0o400); err != nil {
				return err
			}
			if err := os.Rename(tmp, filepath.Join(dir, n)); err != nil {
				return err
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !keep[e.Name()] {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if err != nil {
		return secretsSet{Op: "secretsSet", OK: false, Error: err.Error()}, nil
	}
	return secretsSet{Op: "secretsSet", OK: true}, nil
}
