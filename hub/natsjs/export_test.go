package natsjs

// SetBeforeWrite makes c run fn between reading a key and writing it, so a test
// can make a revision conflict happen.
func SetBeforeWrite(c *Counters, fn func(key string)) { c.beforeWrite = fn }
