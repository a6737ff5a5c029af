package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// splitMbox calls fn for each message of an mbox read from r, in order and
// numbered from 1; a file that does not start with a "From " line is one
// message (.eml). A message larger than max is not buffered: fn gets a nil raw
// and the size seen so far in tooBig. ">From " lines are unescaped (mboxrd).
func splitMbox(r *bufio.Reader, max int64, fn func(n int, raw []byte, tooBig int64) error) error {
	head, _ := r.Peek(5)
	mbox := bytes.Equal(head, []byte("From "))
	var (
		msg       bytes.Buffer
		size      int64
		n         int
		started   = !mbox
		prevBlank = true
	)
	flush := func() error {
		if !started {
			return nil
		}
		n++
		var err error
		if size > max {
			err = fn(n, nil, size)
		} else {
			raw := bytes.TrimSuffix(msg.Bytes(), []byte("\n")) // the separator's blank line
			err = fn(n, append([]byte(nil), raw...), 0)
		}
		msg.Reset()
		size = 0
		return err
	}
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A very long line: keep reading it in pieces.
			size += int64(len(line))
			if size <= max {
				msg.Write(line)
			}
			continue
		}
		if len(line) > 0 {
			if mbox && prevBlank && bytes.HasPrefix(line, []byte("From ")) {
				if ferr := flush(); ferr != nil {
					return ferr
				}
				started = true
				prevBlank = false
				continue
			}
			prevBlank = len(bytes.TrimRight(line, "\r\n")) == 0
			if mbox && bytes.HasPrefix(line, []byte(">")) && bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				line = line[1:]
			}
			size += int64(len(line))
			if size <= max {
				msg.Write(line)
			} else if msg.Len() > 0 {
				msg.Reset() // over the cap: stop holding it
			}
		}
		if err == io.EOF {
			if size > 0 || msg.Len() > 0 {
				return flush()
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}
