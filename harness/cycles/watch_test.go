package cycles

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// surveyCLI is a CLI whose fake orchd counts its surveys in a file and
// answers two running rows (a and b).
func surveyCLI(t *testing.T) (CLI, func() int) {
	t.Helper()
	c := testCLI(t)
	count := filepath.Join(t.TempDir(), "count")
	script := "#!/bin/sh\necho x >> " + count + "\necho '[{\"name\":\"a\",\"state\":\"running\",\"task_status\":\"RUNNING\"},{\"name\":\"b\",\"state\":\"running\",\"task_status\":\"RUNNING\"}]'\n"
	if err := os.WriteFile(c.Orchd, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return c, func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
}

func TestSurveyCacheAnswersUntilAStatusFileChanges(t *testing.T) {
	ctx := context.Background()
	c, surveys := surveyCLI(t)
	c.Surveys = NewSurveyCache(c.StateDir, time.Hour)
	defer c.Surveys.Close()
	survey := func() {
		t.Helper()
		rows, err := c.Survey(ctx)
		if err != nil || len(rows) != 2 || rows[0].Name != "a" {
			t.Fatalf("survey: %v %+v", err, rows)
		}
	}

	survey()
	survey()
	if n := surveys(); n != 2 {
		t.Fatalf("no status dir yet (nothing to watch): %d surveys ran, want 2", n)
	}
	status := filepath.Join(c.StateDir, "status")
	if err := os.Mkdir(status, 0o700); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.Surveys.mu.Lock()
		watching := c.Surveys.statusWd >= 0
		c.Surveys.mu.Unlock()
		if watching {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the status dir the first grow creates was never watched")
		}
		time.Sleep(10 * time.Millisecond)
	}
	survey()
	survey()
	survey()
	if n, hits := surveys(), c.Surveys.Hits(); n != 3 || hits != 2 {
		t.Fatalf("nothing changed: %d surveys ran and %d answered from the cache, want 3 and 2", n, hits)
	}

	if err := os.WriteFile(filepath.Join(status, "ns1.a.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for surveys() == 3 {
		if time.Now().After(deadline) {
			t.Fatal("a status file changed and survey still answered from the cache")
		}
		survey()
	}

	survey() // cached again
	if _, err := c.Run(ctx, "kill", "a"); err != nil {
		t.Fatal(err)
	}
	before := surveys()
	survey()
	if surveys() != before+1 {
		t.Fatal("another orchd command ran and survey answered from the cache")
	}

	c.Surveys.MaxAge = 0
	survey()
	if surveys() != before+2 {
		t.Fatal("an answer older than MaxAge was used")
	}
}

func TestWaitRunningSurveysOnlyOnceTheStatusFilesSayAllRun(t *testing.T) {
	c, surveys := surveyCLI(t)
	status := filepath.Join(c.StateDir, "status")
	if err := os.MkdirAll(status, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(svc, state string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(status, "ns1."+svc+".json"), []byte(`{"state":"`+state+`"}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a", "running")
	write("b", "starting")
	o := Options{CLI: c, Services: 2, RunningTimeout: 500 * time.Millisecond}
	if _, err := waitRunning(context.Background(), o); err == nil {
		t.Fatal("b is starting, yet waitRunning returned")
	}
	if n := surveys(); n != 1 {
		t.Fatalf("%d surveys while a status file said starting, want only the one describing the timeout", n)
	}
	write("b", "running")
	o.RunningTimeout = 10 * time.Second
	if _, err := waitRunning(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}
