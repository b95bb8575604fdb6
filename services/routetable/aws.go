// Package routetable points a cloud's route tables at this node when it
// becomes the active gateway of a route with backups (services/failover).
// A gateway that forwards without masquerade is reached by the hosts of
// its subnet through their cloud's route table (the overlay's CIDR, and
// for a NAT instance the default route, via this instance): when another
// gateway takes over, the table must follow, or replies go to the one
// that failed.
//
// On AWS the gateway that becomes active replaces those routes itself,
// with EC2's ReplaceRoute (CreateRoute where the table has none yet),
// through AWS's Go SDK, with the instance role's credentials, its
// instance ID and region from the instance metadata service, IMDSv2 only.
// Nothing here runs unless a gateway names route tables, and tests point
// both services at fakes of their own (Metadata, Endpoint).
//
// DigitalOcean and Calico-style clouds have no route tables to follow:
// gateways there masquerade into the LAN (README, Two gateways).
package routetable

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/gatenet/gate/services/nodeconfig"
)

// AWS points route tables of a VPC at this instance.
type AWS struct {
	Tables []string // route table IDs, rtb-...
	// Metadata is the instance metadata service's base URL ("": the
	// environment's AWS_EC2_METADATA_SERVICE_ENDPOINT, else AWS's,
	// http://169.254.169.254); Endpoint the EC2 API's ("": the
	// environment's AWS_ENDPOINT_URL_EC2, else the region's), as AWS's
	// own tools read them (a VPC endpoint, or a test's fakes).
	Metadata string
	Endpoint string
	// HTTP, if set, is the client both use.
	HTTP *http.Client
}

// Result is what happened to one route.
type Result struct {
	Table  string
	Dest   netip.Prefix
	Action string // "replaced" or "created"; "" when Err is set
	Err    error
}

var (
	instanceID = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
)

// callTimeout bounds each call to the metadata service and to EC2.
const callTimeout = 5 * time.Second

// Point makes each of dests route to this instance in each of the
// tables: the route is replaced, or created where the table has none for
// that destination. It tries every (table, destination) and reports each;
// the error is set when the instance could not be identified at all.
func (a *AWS) Point(ctx context.Context, dests []netip.Prefix) ([]Result, error) {
	for _, t := range a.Tables {
		if err := nodeconfig.CheckRouteTable(t); err != nil {
			return nil, err
		}
	}
	mdo := imds.Options{Endpoint: cmp.Or(a.Metadata, os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"))}
	if a.HTTP != nil {
		mdo.HTTPClient = a.HTTP // a nil *http.Client would be a non-nil interface
	}
	md := imds.New(mdo)
	id, err := metadata(ctx, md, "instance-id")
	if err != nil {
		return nil, err
	}
	if !instanceID.MatchString(id) {
		return nil, fmt.Errorf("instance metadata: instance-id %s is not an instance ID", strconv.QuoteToASCII(trunc(id)))
	}
	region, err := metadata(ctx, md, "placement/region")
	if err != nil {
		return nil, err
	}
	if !regionName.MatchString(region) {
		return nil, fmt.Errorf("instance metadata: region %s is not a region name", strconv.QuoteToASCII(trunc(region)))
	}
	creds := aws.NewCredentialsCache(ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = md }))
	opt := ec2.Options{Region: region, Credentials: creds, RetryMaxAttempts: 2}
	if a.HTTP != nil {
		opt.HTTPClient = a.HTTP
	}
	if ep := cmp.Or(a.Endpoint, os.Getenv("AWS_ENDPOINT_URL_EC2")); ep != "" {
		opt.BaseEndpoint = aws.String(ep)
	}
	client := ec2.New(opt)
	var out []Result
	for _, t := range a.Tables {
		for _, d := range dests {
			r := Result{Table: t, Dest: d}
			r.Action, r.Err = point(ctx, client, t, d, id)
			out = append(out, r)
		}
	}
	return out, nil
}

// point makes one route go to instance id.
func point(ctx context.Context, c *ec2.Client, table string, dest netip.Prefix, id string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(table), DestinationCidrBlock: aws.String(dest.String()), InstanceId: aws.String(id)})
	if err == nil {
		return "replaced", nil
	}
	if code(err) != "InvalidRoute.NotFound" {
		return "", fmt.Errorf("replacing the route to %s in %s: %s", dest, table, describe(err))
	}
	_, err = c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(table), DestinationCidrBlock: aws.String(dest.String()), InstanceId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("creating the route to %s in %s: %s", dest, table, describe(err))
	}
	return "created", nil
}

// metadata reads one item of the instance metadata.
func metadata(ctx context.Context, md *imds.Client, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := md.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 256)) // an ID or a region; more is cut and then refused
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// code is the API error code of err ("" when it is none).
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// describe is err as a line for logs and status: the API's code and
// message, escaped and cut, or the error.
func describe(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return strconv.QuoteToASCII(trunc(ae.ErrorCode())) + ": " + strconv.QuoteToASCII(trunc(ae.ErrorMessage()))
	}
	return strconv.QuoteToASCII(trunc(err.Error()))
}

// trunc cuts what a service sent to 120 bytes.
func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
