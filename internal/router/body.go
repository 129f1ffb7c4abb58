package router

import (
	"bufio"
	"errors"
	"io"
)

var errBadChunk = errors.New("bad chunk")

// chunkedReader decodes a chunked body strictly: hex sizes of at most 15
// digits, extensions allowed, CRLF everywhere; trailers are read and
// dropped. Anything else is errBadChunk.
type chunkedReader struct {
	r    *bufio.Reader
	left int64 // bytes left in the current chunk
	done bool
	err  error
	line []byte
}

func (c *chunkedReader) reset(r *bufio.Reader) {
	c.r, c.left, c.done, c.err = r, 0, false, nil
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 {
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
		if c.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && c.left == 0 {
		err = c.crlf()
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *chunkedReader) crlf() error {
	a, err := c.r.ReadByte()
	if err != nil {
		return eofUnexpected(err)
	}
	b, err := c.r.ReadByte()
	if err != nil {
		return eofUnexpected(err)
	}
	if a != '\r' || b != '\n' {
		return errBadChunk
	}
	return nil
}

func (c *chunkedReader) next() error {
	var err error
	c.line, err = readLine(c.r, c.line[:0], 4096)
	if err != nil {
		return chunkErr(err)
	}
	var n int64
	digits := 0
	i := 0
	for ; i < len(c.line); i++ {
		d := c.line[i]
		switch {
		case '0' <= d && d <= '9':
			d -= '0'
		case 'a' <= d && d <= 'f':
			d -= 'a' - 10
		case 'A' <= d && d <= 'F':
			d -= 'A' - 10
		default:
			goto ext
		}
		n = n<<4 | int64(d)
		digits++
		if digits > 15 {
			return errBadChunk
		}
	}
ext:
	if digits == 0 {
		return errBadChunk
	}
	if i < len(c.line) && c.line[i] != ';' && c.line[i] != ' ' && c.line[i] != '\t' {
		return errBadChunk
	}
	if n > 0 {
		c.left = n
		return nil
	}
	// Last chunk: trailers until an empty line.
	for {
		c.line, err = readLine(c.r, c.line[:0], 8192)
		if err != nil {
			return chunkErr(err)
		}
		if len(c.line) == 0 {
			c.done = true
			return nil
		}
	}
}

func chunkErr(err error) error {
	if err == errLineTooLong || err == errBareLF {
		return errBadChunk
	}
	return eofUnexpected(err)
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fixedReader reads exactly n bytes of a Content-Length body.
type fixedReader struct {
	r    *bufio.Reader
	left int64
}

func (f *fixedReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	if err == io.EOF && f.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
