//go:build !linux

package cycles

// watch: no inotify here, so the cache never answers.
func (c *SurveyCache) watch(string) {}
