// The function's secrets as files (protocol/loader.ts, "Secrets"): each new or changed value written to
// a temporary file (0400) and renamed over the old one, every file not in `keep` removed; the folder is
// opened (0700) only while it is written.
package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

var secretName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func writeSecrets(dir string, files map[string]string, keep []string) error {
	kept := map[string]bool{}
	for _, k := range keep {
		if !secretName.MatchString(k) {
			return fmt.Errorf("%q is not a secret name", k)
		}
		kept[k] = true
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("cannot open the secrets folder: %v", err)
	}
	defer os.Chmod(dir, 0o500)
	for name, value := range files {
		if !secretName.MatchString(name) {
			return fmt.Errorf("%q is not a secret name", name)
		}
		data, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return fmt.Errorf("secret %s is not base64", name)
		}
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o400); err != nil {
			return fmt.Errorf("cannot write secret %s: %v", name, err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("cannot write secret %s: %v", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !kept[e.Name()] {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}
