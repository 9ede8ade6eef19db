package web

import (
	"encoding/binary"

	"github.com/coder/websocket"
)

// appendFrameHeader appends the header of an unfragmented, unmasked
// server-to-client frame of typ carrying n bytes (RFC 6455 §5.2). A server
// frame's bytes are the same for every subscriber, so the payload is
// written as it is, shared, never copied.
func appendFrameHeader(dst []byte, typ websocket.MessageType, n int) []byte {
	opcode := byte(0x1) // text
	if typ == websocket.MessageBinary {
		opcode = 0x2
	}
	dst = append(dst, 0x80|opcode) // FIN
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 127), uint64(n))
	}
}

// maxFrameHeader is the longest header appendFrameHeader writes.
const maxFrameHeader = 10

// frameLen is how many bytes f takes on the wire, header included.
func frameLen(f outFrame) int {
	n := len(f.data)
	switch {
	case n < 126:
		return 2 + n
	case n <= 0xffff:
		return 4 + n
	default:
		return maxFrameHeader + n
	}
}
