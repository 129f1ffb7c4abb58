package logplex

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// An app's history on disk is two append-only segment files in the logs
// directory: <app id>.log, the current one, and <app id>.log.1, the one
// before. Once the current segment holds a full history (1 500 lines) the
// worker makes it the previous one before its next append: it removes the
// previous file, renames the current one over its name and starts a new
// current one. So the previous segment always holds a full history, the
// current one less than two, and the history is the newest lines of the
// two files; a crash at any point leaves the newest full history on disk.
//
// Rotation does not fsync: under a burst an app fills a history in a few
// milliseconds, and a segment rotated out twice is removed before anyone
// needs it on disk, so writing it back would be wasted work. (Removing
// before renaming, rather than renaming over, also keeps ext4 from
// flushing the renamed file at once.) The syncer fsyncs, every
// SyncInterval, the current segment and the one rotated out since its last
// pass, then the directory: a power failure loses at most the lines of
// about two intervals.
//
// A segment starts with segMagic; each record is
//
//	uint32 LE  payload length
//	uint32 LE  CRC-32C of the payload
//	payload:   uvarint seq, varint time (µs), uvarint len + source,
//	           uvarint len + dyno, message (the rest)
//
// Reading stops at the first record that is short or fails its checksum (a
// write torn by a power failure); the current segment is truncated there
// so that appends continue after valid data.

const (
	segMagic   = "skifflog1\n"
	segCurrent = ".log"
	segPrev    = ".log.1"
	maxRecord  = 64 << 10 // a line is at most 10 000 bytes; anything larger is corruption
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is the on-disk history of one channel. Only the channel's worker
// appends and rotates; the syncer takes the files to fsync them.
type segment struct {
	dir, base string // base: the file name without suffix

	mu    sync.Mutex
	f     *os.File // current segment, opened on first append
	size  int64    // bytes of valid data in f
	n     int      // records in the current segment
	dirty bool     // f written since the syncer last took it
	// prev is the segment rotated out since the syncer's last pass, for
	// it to fsync and close; a rotation that removes it first closes it.
	prev     *os.File
	dirDirty bool // a file was removed, renamed or created since the last directory fsync
	buf      []byte
}

// fileBase turns an app id into a file name: ids are uuids, which are safe
// as they are; anything else is hex-encoded.
func fileBase(appID string) string {
	safe := appID != ""
	for i := 0; safe && i < len(appID); i++ {
		c := appID[i]
		safe = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if safe {
		return appID
	}
	return "x." + hex.EncodeToString([]byte(appID))
}

// appIDOf reverses fileBase.
func appIDOf(base string) (string, bool) {
	if h, ok := strings.CutPrefix(base, "x."); ok {
		b, err := hex.DecodeString(h)
		return string(b), err == nil
	}
	return base, fileBase(base) == base
}

func (s *segment) path(suffix string) string { return filepath.Join(s.dir, s.base+suffix) }

// load reads the segments' records in order into visit and prepares the
// current segment for appending: a torn tail is cut off.
func (s *segment) load(visit func(Line)) error {
	if _, _, err := readSegment(s.path(segPrev), visit); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	n, valid, err := readSegment(s.path(segCurrent), visit)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.path(segCurrent), os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if valid < int64(len(segMagic)) {
		// No valid header (a crash right after the file was created):
		// start it afresh.
		if err := f.Truncate(0); err != nil {
			f.Close()
			return err
		}
		if _, err := f.WriteAt([]byte(segMagic), 0); err != nil {
			f.Close()
			return err
		}
		valid = int64(len(segMagic))
	} else if err := f.Truncate(valid); err != nil {
		f.Close()
		return err
	}
	// The file is reopened at the first append: an idle app holds no
	// descriptor.
	s.size, s.n = valid, n
	return f.Close()
}

// readSegment visits the valid records of one file and returns how many
// there were and the length of the valid prefix.
func readSegment(path string, visit func(Line)) (n int, valid int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	if !bytes.HasPrefix(data, []byte(segMagic)) {
		return 0, 0, nil
	}
	off := len(segMagic)
	for {
		l, size, ok := decodeRecord(data[off:])
		if !ok {
			return n, int64(off), nil
		}
		visit(l)
		n++
		off += size
	}
}

func decodeRecord(b []byte) (Line, int, bool) {
	if len(b) < 8 {
		return Line{}, 0, false
	}
	size := int(binary.LittleEndian.Uint32(b))
	if size > maxRecord || len(b) < 8+size {
		return Line{}, 0, false
	}
	p := b[8 : 8+size]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return Line{}, 0, false
	}
	var l Line
	var k int
	if l.Seq, k = binary.Uvarint(p); k <= 0 {
		return Line{}, 0, false
	}
	p = p[k:]
	if l.Time, k = binary.Varint(p); k <= 0 {
		return Line{}, 0, false
	}
	p = p[k:]
	var ok bool
	if l.Source, p, ok = readString(p); !ok {
		return Line{}, 0, false
	}
	if l.Dyno, p, ok = readString(p); !ok {
		return Line{}, 0, false
	}
	l.Message = string(p)
	return l, 8 + size, true
}

func readString(p []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return "", nil, false
	}
	return string(p[k : k+int(n)]), p[k+int(n):], true
}

func appendRecord(b []byte, l *Line) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, l.Seq)
	b = binary.AppendVarint(b, l.Time)
	b = binary.AppendUvarint(b, uint64(len(l.Source)))
	b = append(b, l.Source...)
	b = binary.AppendUvarint(b, uint64(len(l.Dyno)))
	b = append(b, l.Dyno...)
	b = append(b, l.Message...)
	p := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(p)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(p, castagnoli))
	return b
}

// append writes lines to the current segment with one write(2), first
// rotating it if it holds a full history (limit records). Once it
// returns, the lines survive a crash of the process (they are in the OS);
// the syncer makes them survive a power failure.
func (s *segment) append(lines []Line, limit int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(lines) > limit {
		// Only the newest limit lines can be part of the history after
		// this batch: writing the others would only rotate them out again.
		lines = lines[len(lines)-limit:]
	}
	if len(lines) == 0 {
		return nil
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	if s.n >= limit {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	s.buf = s.buf[:0]
	for i := range lines {
		s.buf = appendRecord(s.buf, &lines[i])
	}
	if _, err := s.f.Write(s.buf); err != nil {
		// Cut off whatever part was written, so the file stays valid.
		s.f.Truncate(s.size)
		s.f.Seek(s.size, io.SeekStart)
		return err
	}
	s.size += int64(len(s.buf))
	s.n += len(lines)
	s.dirty = true
	if cap(s.buf) > 1<<20 {
		s.buf = nil // a burst of long lines; don't keep its buffer
	}
	return nil
}

// rotate makes the current segment, which holds a full history, the
// previous one, without an fsync (see the top of this file). Called with
// mu held.
func (s *segment) rotate() error {
	if s.prev != nil {
		s.prev.Close() // never fsynced: its name goes now
		s.prev = nil
	}
	if err := os.Remove(s.path(segPrev)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.dirDirty = true
	if err := os.Rename(s.path(segCurrent), s.path(segPrev)); err != nil {
		return err
	}
	s.prev, s.f = s.f, nil
	return s.create()
}

// createSegment creates a segment file holding its header.
func createSegment(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the history segment: %w", err)
	}
	if _, err := f.Write([]byte(segMagic)); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating the history segment: %w", err)
	}
	return f, nil
}

// sync is the syncer's pass over the segment: it fsyncs the segment
// rotated out since the last pass and closes it, the current one if it was
// written since, and the directory if a file was created or renamed.
func (s *segment) sync() error {
	s.mu.Lock()
	prev, f, dirty, dir := s.prev, s.f, s.dirty && s.f != nil, s.dirDirty
	s.prev, s.dirty, s.dirDirty = nil, false, false
	s.mu.Unlock()
	// The worker may close f meanwhile (app removed, server stopping): the
	// os.File keeps the descriptor until the fsync returns.
	var errs []error
	if prev != nil {
		errs = append(errs, prev.Sync(), prev.Close())
	}
	if dirty {
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if dir {
		syncDir(s.dir)
	}
	return errors.Join(errs...)
}

// open opens the current segment for appending after its valid data, or
// creates it.
func (s *segment) open() error {
	if s.size > 0 {
		f, err := os.OpenFile(s.path(segCurrent), os.O_RDWR, 0o600)
		if err == nil {
			if _, err = f.Seek(s.size, io.SeekStart); err != nil {
				f.Close()
				return err
			}
			s.f = f
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return s.create()
}

// create starts the current segment. The syncer fsyncs the directory at
// its next pass, so that the worker does not wait for it.
func (s *segment) create() error {
	f, err := createSegment(s.path(segCurrent))
	if err != nil {
		return err
	}
	s.f, s.size, s.n, s.dirty = f, int64(len(segMagic)), 0, true
	s.dirDirty = true
	return nil
}

// close fsyncs and closes the segments.
func (s *segment) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, f := range []*os.File{s.prev, s.f} {
		if f != nil {
			errs = append(errs, f.Sync(), f.Close())
		}
	}
	s.prev, s.f = nil, nil
	if s.dirDirty {
		syncDir(s.dir)
		s.dirDirty = false
	}
	return errors.Join(errs...)
}

// remove closes and deletes both segments.
func (s *segment) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range []*os.File{s.prev, s.f} {
		if f != nil {
			f.Close()
		}
	}
	s.prev, s.f = nil, nil
	s.size, s.n = 0, 0
	var errs []error
	for _, suffix := range []string{segCurrent, segPrev} {
		if err := os.Remove(s.path(suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// segmentBases lists the apps that have history in dir.
func segmentBases(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range entries {
		name := e.Name()
		base, ok := strings.CutSuffix(name, segPrev)
		if !ok {
			base, ok = strings.CutSuffix(name, segCurrent)
		}
		if !ok || seen[base] || !e.Type().IsRegular() {
			continue
		}
		seen[base] = true
		out = append(out, base)
	}
	return out, nil
}
