package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// ErrSyntax is wrapped by ceph.conf and keyring parse errors.
var ErrSyntax = errors.New("config: syntax error")

// maxLine bounds one (joined) line of a configuration file.
const maxLine = 1 << 16

// File is a parsed ceph.conf (or keyring): sections of key/value pairs.
// Keys are normalised (NormalizeKey); section names are kept as written,
// trimmed.
type File struct {
	Sections map[string]map[string]string
	order    []string
}

// NormalizeKey maps the spellings Ceph treats as equal to one form:
// spaces, dashes and underscores are all "_", runs collapse, and the
// key is trimmed ("mon host" == "mon_host" == "mon-host").
func NormalizeKey(k string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.TrimSpace(k) {
		if r == ' ' || r == '\t' || r == '_' || r == '-' {
			if !under {
				b.WriteByte('_')
			}
			under = true
			continue
		}
		under = false
		b.WriteRune(r)
	}
	return strings.Trim(b.String(), "_")
}

// ParseFile reads and parses a file.
func ParseFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cf, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cf, nil
}

// Parse parses ceph.conf syntax: "[section]" headers, "key = value"
// lines, comments from ';' or '#' to the end of the line (outside double
// quotes), values optionally in double quotes, and lines continued with
// a trailing backslash. Later assignments win; keys before the first
// header belong to [global].
func Parse(r io.Reader) (*File, error) { return parse(r, false) }

// parse is Parse; with sectionFirst a key before the first header is an
// error (keyrings: every key belongs to an entity).
func parse(r io.Reader, sectionFirst bool) (*File, error) {
	f := &File{Sections: map[string]map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	section := ""
	lineNo := 0
	var cont strings.Builder
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		if lineNo == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		if strings.HasSuffix(raw, "\\") {
			if cont.Len()+len(raw) > maxLine {
				return nil, fmt.Errorf("%w: line %d too long", ErrSyntax, lineNo)
			}
			cont.WriteString(strings.TrimSuffix(raw, "\\"))
			continue
		}
		if cont.Len() > 0 {
			cont.WriteString(raw)
			raw = cont.String()
			cont.Reset()
		}
		line, err := stripComment(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, lineNo, err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 || strings.TrimSpace(line[end+1:]) != "" {
				return nil, fmt.Errorf("%w: line %d: bad section header %q", ErrSyntax, lineNo, line)
			}
			section = strings.TrimSpace(line[1:end])
			if section == "" {
				return nil, fmt.Errorf("%w: line %d: empty section name", ErrSyntax, lineNo)
			}
			f.section(section)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: expected key = value, got %q", ErrSyntax, lineNo, line)
		}
		key := NormalizeKey(k)
		if key == "" {
			return nil, fmt.Errorf("%w: line %d: empty key", ErrSyntax, lineNo)
		}
		if section == "" && sectionFirst {
			return nil, fmt.Errorf("%w: line %d: %q outside a section", ErrSyntax, lineNo, key)
		}
		if section == "" {
			section = "global" // keys before any header: treat as [global]
		}
		f.section(section)[key] = unquote(strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return f, nil
}

func (f *File) section(name string) map[string]string {
	s, ok := f.Sections[name]
	if !ok {
		s = map[string]string{}
		f.Sections[name] = s
		f.order = append(f.order, name)
	}
	return s
}

// SectionNames returns the section names in file order.
func (f *File) SectionNames() []string { return append([]string(nil), f.order...) }

// stripComment removes a ';' or '#' comment that is not inside double quotes.
func stripComment(s string) (string, error) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ';', '#':
			if !inQuote {
				return s[:i], nil
			}
		}
	}
	if inQuote {
		return "", errors.New("unterminated quote")
	}
	return s, nil
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		inner := v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(inner); i++ {
			if inner[i] == '\\' && i+1 < len(inner) {
				i++
			}
			b.WriteByte(inner[i])
		}
		return b.String()
	}
	return v
}

// Get looks key up for an entity the way Ceph does: [type.id], then
// [type], then [global]. ok is false when no section sets it.
func (f *File) Get(name entity.Name, key string) (string, bool) {
	key = NormalizeKey(key)
	for _, sec := range []string{name.String(), name.Type.String(), "global"} {
		if v, ok := f.Sections[sec][key]; ok {
			return v, true
		}
	}
	return "", false
}
