package buffer

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/tributary-edge/tributary/stream"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// rowCRC is the checksum stored with each event: CRC-32C, as the wire format
// uses, over its seq, stream, event time and data, so that damage to any of
// them in the file is found before the event is sent.
func rowCRC(seq uint64, streamName string, ts int64, data []byte) uint32 {
	var b [3 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(b[:], seq)
	n += binary.PutUvarint(b[n:], uint64(len(streamName)))
	h := crc32.Update(0, castagnoli, b[:n])
	h = crc32.Update(h, castagnoli, []byte(streamName))
	n = binary.PutVarint(b[:], ts)
	h = crc32.Update(h, castagnoli, b[:n])
	return crc32.Update(h, castagnoli, data)
}

// checkRow reports what is wrong with a row read from the file, or nil: its
// checksum does not match (when it has one), its stream breaks the name rule,
// or its data is not a JSON object in valid UTF-8. A row written before
// checksums existed (crc nil) is checked for the last two only.
func checkRow(seq uint64, streamName string, ts int64, data []byte, crc *int64) error {
	if crc != nil && uint32(*crc) != rowCRC(seq, streamName, ts, data) {
		return fmt.Errorf("seq %d: checksum %08x does not match its contents", seq, uint32(*crc))
	}
	if err := stream.ValidateName("stream", streamName); err != nil {
		return fmt.Errorf("seq %d: %v", seq, err)
	}
	if !stream.IsObject(data) {
		return fmt.Errorf("seq %d: data is not a JSON object in valid UTF-8", seq)
	}
	return nil
}
