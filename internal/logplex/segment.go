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
// before. When the current segment holds a full history (1 500 lines) it is
// fsynced and renamed over the previous one, and a new current segment is
// started. So the disk holds between one and a few histories per app, and
// the history is the newest lines of the two files. Rotation is one rename:
// no rewriting, and a crash at any point leaves one of the two states.
//
// The worker never waits for an fsync or a rename: the syncer fsyncs the
// current segment every SyncInterval, and at once when the worker asks
// because the segment is full. Once an fsync covered a full history of the
// segment, the syncer rotates it: it renames the file over the previous
// one (what that held has become redundant) and creates the next one while
// the worker goes on appending to the open file (its records land in the
// previous segment, which is read first), then swaps the files under the
// lock. Only a segment that reaches maxSegment histories before the syncer
// rotated it (a very slow disk) is rotated by the worker itself, with an
// fsync, or, if the syncer is in the middle of rotating it, waits for that
// rename to end: this bounds the disk.
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
	// maxSegment is how many histories the current segment may hold while
	// its rotation waits for an fsync by the syncer (at 1 500 lines of
	// ~150 bytes, 3.6 MB): enough for the commits of a few hundred ms.
	maxSegment = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segment is the on-disk history of one channel. Only the channel's worker
// appends; the syncer takes the file to fsync it.
type segment struct {
	dir, base string // base: the file name without suffix

	// rot is held by the syncer while it rotates, and by close and
	// remove, which must not run in the middle of a rotation. The worker
	// never takes it: it sees rotating instead.
	rot sync.Mutex

	mu    sync.Mutex
	f     *os.File // current segment, opened on first append
	size  int64    // bytes of valid data in f
	n     int      // records in the current segment
	dirty bool     // written since the last fsync
	// synced is how many records of f an fsync has covered.
	synced int
	// retired are rotated files, for the syncer to fsync and close.
	retired  []*os.File
	dirDirty bool // a file was renamed or created since the last directory fsync
	limit    int  // records in a full history (the worker's last append says)
	rotating bool // the syncer is renaming f
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

// append writes lines to the current segment with one write(2). Once it
// returns, the lines survive a crash of the process (they are in the OS);
// the syncer makes them survive a power failure. It reports whether the
// segment is full (limit records) but no fsync has covered that yet: the
// syncer should sync it now, so the next append can rotate it.
func (s *segment) append(lines []Line, limit int) (wantSync bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(lines) > limit {
		// Only the newest limit lines can be part of the history after
		// this batch: writing the others would only rotate them out again.
		lines = lines[len(lines)-limit:]
	}
	if len(lines) == 0 {
		return false, nil
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return false, err
		}
	}
	s.limit = limit
	for s.n >= maxSegment*limit && s.rotating {
		// The syncer is renaming this full segment away: wait for it
		// rather than grow the file past the bound (rot is held for the
		// rotation; the syncer takes mu at its end, so let go of it).
		s.mu.Unlock()
		s.rot.Lock()
		s.rot.Unlock()
		s.mu.Lock()
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			return false, err
		}
	}
	if s.n >= maxSegment*limit && !s.rotating {
		if err := s.rotate(); err != nil {
			return false, err
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
		return false, err
	}
	s.size += int64(len(s.buf))
	s.n += len(lines)
	s.dirty = true
	if cap(s.buf) > 1<<20 {
		s.buf = nil // a burst of long lines; don't keep its buffer
	}
	return s.n >= limit && !s.rotating, nil
}

// rotateSynced is the syncer's rotation of f, the current segment, of
// which an fsync covered a full history: f becomes the previous segment
// without another fsync (the previous one's records are redundant even
// after a power failure) and a new current segment is created, without
// the lock, so that the worker goes on appending to f meanwhile. The
// caller holds rot and has set rotating.
func (s *segment) rotateSynced(f *os.File) error {
	err := os.Rename(s.path(segCurrent), s.path(segPrev))
	var nf *os.File
	if err == nil {
		nf, err = createSegment(s.path(segCurrent))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotating = false
	if s.f != f { // not reached: close and remove wait for rot
		if nf != nil {
			nf.Close()
		}
		return err
	}
	if err != nil && !errors.Is(err, errCreate) {
		return err // not renamed: f stays current
	}
	// Renamed: f is the previous segment now. Without a new file (err),
	// the next append creates one (size 0).
	s.retired = append(s.retired, f)
	s.f, s.n, s.synced, s.size, s.dirDirty = nf, 0, 0, 0, true
	if nf != nil {
		s.size, s.dirty = int64(len(segMagic)), true
	}
	return err
}

// errCreate marks a failure to create a segment after a rename.
var errCreate = errors.New("creating the history segment")

// createSegment creates a segment file holding its header.
func createSegment(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCreate, err)
	}
	if _, err := f.Write([]byte(segMagic)); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", errCreate, err)
	}
	return f, nil
}

// sync is the syncer's pass over the segment: it fsyncs the files rotated
// since the last pass and closes them, the current file if it was written
// to, and the directory if files were renamed or created in it. The lock
// is not held during the fsyncs, so the worker goes on appending.
func (s *segment) sync() error {
	s.mu.Lock()
	f, n, dirty := s.f, s.n, s.dirty && s.f != nil
	retired, dir := s.retired, s.dirDirty
	s.retired, s.dirty, s.dirDirty = nil, false, false
	s.mu.Unlock()
	var errs []error
	for _, r := range retired {
		errs = append(errs, r.Sync(), r.Close())
	}
	if dirty {
		err := f.Sync()
		if err == nil {
			s.rot.Lock()
			s.mu.Lock()
			rotate := false
			if s.f == f {
				s.synced = max(s.synced, n)
				rotate = s.limit > 0 && s.synced >= s.limit && !s.rotating
				s.rotating = rotate
			}
			s.mu.Unlock()
			if rotate {
				errs = append(errs, s.rotateSynced(f))
				dir = true
			}
			s.rot.Unlock()
		} else if !errors.Is(err, os.ErrClosed) {
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
	s.f, s.size, s.n, s.synced, s.dirty = f, int64(len(segMagic)), 0, 0, true
	s.dirDirty = true
	return nil
}

// rotate makes the current segment the previous one.
func (s *segment) rotate() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.f.Close()
	s.f = nil
	if err := os.Rename(s.path(segCurrent), s.path(segPrev)); err != nil {
		return err
	}
	return s.create()
}

// close fsyncs and closes the current segment (and rotated ones the
// syncer has not closed yet).
func (s *segment) close() error {
	s.rot.Lock()
	defer s.rot.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, r := range s.retired {
		errs = append(errs, r.Sync(), r.Close())
	}
	s.retired = nil
	if s.f != nil {
		errs = append(errs, s.f.Sync(), s.f.Close())
		s.f = nil
	}
	if s.dirDirty {
		syncDir(s.dir)
		s.dirDirty = false
	}
	return errors.Join(errs...)
}

// remove closes and deletes both segments.
func (s *segment) remove() error {
	s.rot.Lock()
	defer s.rot.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	for _, r := range s.retired {
		r.Close()
	}
	s.retired = nil
	s.size, s.n, s.synced = 0, 0, 0
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
