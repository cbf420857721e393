//go:build !linux

package hub

import "errors"

// freeBytes is not measured on this platform: the store guard stays off.
func freeBytes(string) (int64, error) {
	return 0, errors.New("free space is not measured on this platform")
}

// allocate is not needed where free space is not measured.
func allocate(string, int64) error {
	return errors.New("no ballast on this platform")
}
