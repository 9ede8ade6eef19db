package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Source names the schema file of one bus.
type Source struct {
	Bus  string
	File string // path of the schema file; "$ref"s resolve in its folder
}

// Registry holds the compiled schema of every bus that has one. It is
// immutable: a reload compiles a new one.
type Registry struct {
	buses map[string]*busSchema
}

// busSchema is one bus's compiled schema and the documents it was
// compiled from.
type busSchema struct {
	file     string // as given in the Source
	url      string // file URL of the main document
	dir      string // its folder, absolute
	compiled *jsonschema.Schema
	docs     map[string][]byte // by path relative to dir, the main one included
	main     string            // the main document's path relative to dir
	loadErr  error             // the first error of load, kept whole
}

// MaxSchemaFile caps the size of one schema file.
const MaxSchemaFile = 4 << 20

// ErrOutsideFolder refuses a "$ref" that leaves the schema's folder.
var ErrOutsideFolder = errors.New("schema: only files in the schema's own folder can be referenced")

// CompileError says which bus's schema failed to compile, and why.
type CompileError struct {
	Bus  string
	File string
	Err  error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("bus %s: schema %s: %v", e.Bus, e.File, e.Err)
}

func (e *CompileError) Unwrap() error { return e.Err }

// Compile reads and compiles the schema of each source. An error names
// the bus, the file and what is wrong.
func Compile(sources []Source) (*Registry, error) {
	r := &Registry{buses: make(map[string]*busSchema, len(sources))}
	for _, src := range sources {
		if _, dup := r.buses[src.Bus]; dup {
			return nil, fmt.Errorf("bus %s: declared twice", src.Bus)
		}
		bs, err := compile(src.File)
		if err != nil {
			return nil, &CompileError{Bus: src.Bus, File: src.File, Err: err}
		}
		r.buses[src.Bus] = bs
	}
	return r, nil
}

// compile compiles one bus's schema file with a compiler of its own
// whose loader reads only files of the schema's folder.
func compile(file string) (*busSchema, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve the path: %w", err)
	}
	bs := &busSchema{
		file: file,
		url:  (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(),
		dir:  filepath.Dir(abs),
		docs: make(map[string][]byte),
		main: filepath.Base(abs),
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020 // when "$schema" is absent
	c.AssertFormat = true
	c.LoadURL = bs.load
	bs.compiled, err = c.Compile(bs.url)
	if bs.loadErr != nil {
		// The library flattens the loader's error into text.
		return nil, bs.loadErr
	}
	if err != nil {
		return nil, compileError(err)
	}
	return bs, nil
}

// load reads a schema document for the compiler: a file of the folder,
// nothing else (no network, no other folders).
func (bs *busSchema) load(raw string) (io.ReadCloser, error) {
	rc, err := bs.loadFile(raw)
	if err != nil && bs.loadErr == nil {
		bs.loadErr = err
	}
	return rc, err
}

func (bs *busSchema) loadFile(raw string) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" {
		return nil, fmt.Errorf("%w: cannot load %s", ErrOutsideFolder, raw)
	}
	path := filepath.FromSlash(u.Path)
	rel, err := filepath.Rel(bs.dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%w: cannot load %s", ErrOutsideFolder, path)
	}
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	bs.docs[filepath.ToSlash(rel)] = data
	return io.NopCloser(bytes.NewReader(data)), nil
}

// readFile reads a schema document and checks it is JSON, naming the
// line and column of a syntax error.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSchemaFile+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	if len(data) > MaxSchemaFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxSchemaFile)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, int(se.Offset)-1) // Offset counts the offending byte
			return nil, fmt.Errorf("%s:%d:%d: not JSON: %v", filepath.Base(path), line, col, se)
		}
		return nil, fmt.Errorf("%s: not JSON: %w", filepath.Base(path), err)
	}
	return data, nil
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, offset int) (line, col int) {
	offset = max(min(offset, len(data)), 0)
	line = 1 + bytes.Count(data[:offset], []byte{'\n'})
	col = offset - bytes.LastIndexByte(data[:offset], '\n')
	return line, col
}

// compileError makes the library's compile error readable: a schema that
// breaks its meta-schema is reported by its leaf causes.
func compileError(err error) error {
	var se *jsonschema.SchemaError
	if !errors.As(err, &se) {
		return err
	}
	var ve *jsonschema.ValidationError
	if errors.As(se.Err, &ve) {
		var msgs []string
		for _, leaf := range leaves(ve, nil) {
			msgs = append(msgs, fmt.Sprintf("at %s: %s", pointerOrRoot(leaf.InstanceLocation), leaf.Message))
		}
		return fmt.Errorf("not a valid JSON Schema: %s", strings.Join(msgs, "; "))
	}
	if se.Err != nil {
		return errors.New(strings.TrimPrefix(se.Err.Error(), "jsonschema: "))
	}
	return err
}

func pointerOrRoot(p string) string {
	if p == "" {
		return "the root"
	}
	return p
}

// Has reports whether bus has a schema.
func (r *Registry) Has(bus string) bool {
	if r == nil {
		return false
	}
	_, ok := r.buses[bus]
	return ok
}

// Buses returns the buses that have a schema, in order.
func (r *Registry) Buses() []string {
	if r == nil {
		return nil
	}
	out := make([]string, 0, len(r.buses))
	for bus := range r.buses {
		out = append(out, bus)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// File returns the schema file of bus as given in its Source.
func (r *Registry) File(bus string) string {
	if bs := r.get(bus); bs != nil {
		return bs.file
	}
	return ""
}

// Document returns the schema document of bus, as written in its file.
func (r *Registry) Document(bus string) ([]byte, bool) {
	bs := r.get(bus)
	if bs == nil {
		return nil, false
	}
	return bs.docs[bs.main], true
}

// Referenced returns a document that the schema of bus references by
// "$ref", by its path relative to the schema's folder ("defs.json").
func (r *Registry) Referenced(bus string, name string) ([]byte, bool) {
	bs := r.get(bus)
	if bs == nil {
		return nil, false
	}
	doc, ok := bs.docs[name]
	return doc, ok
}

// Documents lists the paths of the documents the schema of bus is made
// of, relative to its folder, the main one first.
func (r *Registry) Documents(bus string) []string {
	bs := r.get(bus)
	if bs == nil {
		return nil
	}
	out := []string{bs.main}
	for name := range bs.docs {
		if name != bs.main {
			out = append(out, name)
		}
	}
	sort.Strings(out[1:])
	return out
}

func (r *Registry) get(bus string) *busSchema {
	if r == nil {
		return nil
	}
	return r.buses[bus]
}
