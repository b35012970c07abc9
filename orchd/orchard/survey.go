package orchard

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/platform"
)

// SurveyOptions control how ShowSurvey prints.
type SurveyOptions struct {
	JSON bool // the rows as JSON instead of the table
	// Watch prints again every Interval until ctx ends.
	Watch    bool
	Interval time.Duration
	// Terminal redraws a watched table in place (w is a terminal).
	Terminal bool
}

// ShowSurvey surveys the namespace (or the services named) and prints the
// result to w: once, or every o.Interval with o.Watch until ctx ends.
func ShowSurvey(ctx context.Context, c *config.Config, only []string, w io.Writer, o SurveyOptions) error {
	for {
		rows, err := Survey(ctx, c, only...)
		if err != nil {
			return err
		}
		switch {
		case o.JSON:
			if rows == nil {
				rows = []platform.ServiceStatus{}
			}
			if err := WriteJSON(w, rows); err != nil {
				return err
			}
		case o.Watch && o.Terminal:
			var b strings.Builder
			b.WriteString("\x1b[H\x1b[2J") // home, clear: redraw in place
			WriteSurvey(&b, rows)
			io.WriteString(w, b.String())
		default:
			WriteSurvey(w, rows)
		}
		if !o.Watch {
			return nil
		}
		if !o.Terminal {
			fmt.Fprintln(w)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Interval):
		}
	}
}

// WriteSurvey prints the survey table: SERVICE STATE HEALTH PID RESTARTS
// UPTIME EXIT (CONTAINER TASK when any row has a container) REASON.
func WriteSurvey(w io.Writer, rows []platform.ServiceStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	withTask := false
	for _, r := range rows {
		withTask = withTask || r.ContainerID != ""
	}
	head := "SERVICE\tSTATE\tHEALTH\tPID\tRESTARTS\tUPTIME\tEXIT"
	if withTask {
		head += "\tCONTAINER\tTASK"
	}
	fmt.Fprintln(tw, head+"\tREASON")
	for _, r := range rows {
		pid, exit, up := "-", "-", "-"
		if r.Pid > 0 {
			pid = strconv.Itoa(r.Pid)
		}
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		if r.State == "running" && r.Uptime > 0 {
			up = r.Uptime.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s", r.Name, r.State, health(r), pid, r.Restarts, up, exit)
		if withTask {
			fmt.Fprintf(tw, "\t%s\t%s", dash(r.ContainerID), dash(r.TaskStatus))
		}
		fmt.Fprintf(tw, "\t%s\n", reason(r))
	}
	tw.Flush()
}

// reason says why a service is not running: the supervisor's message, else
// where to look.
func reason(r platform.ServiceStatus) string {
	if r.State == "running" {
		return ""
	}
	if r.Message != "" {
		return r.Message
	}
	if r.State == "failed" {
		return "see: orchd logs " + r.Name
	}
	return ""
}

// health is the HEALTHCHECK's verdict (starting, healthy, unhealthy) while
// the service runs, "-" without a check or when it is not running.
func health(r platform.ServiceStatus) string {
	if r.State != "running" && r.State != "starting" {
		return "-"
	}
	return dash(r.Health)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
