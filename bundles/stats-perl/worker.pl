#!/usr/bin/perl
# A disruptor worker in Perl, speaking the NDJSON worker protocol (docs/worker-protocol.md) with
# nothing but the core JSON::PP module. Each item is an array of numbers; each result is
# {"count", "sum", "mean", "min", "max"}. It proves that a worker needs no Python at all.
use strict;
use warnings;
use JSON::PP;
use Scalar::Util qw(looks_like_number);

my $json = JSON::PP->new->utf8->canonical->allow_nonref;
$| = 1;    # stdout unbuffered: one whole line per reply

sub send_frame { print $json->encode({ v => 1, %{ $_[0] } }), "\n" }

sub summarise {
    my ($item) = @_;
    die "an item is an array of numbers\n" unless ref $item eq 'ARRAY';
    die "the array is empty\n" unless @$item;
    my ($sum, $min, $max) = (0, undef, undef);
    for my $x (@$item) {
        die "not a number: " . (defined $x ? $x : 'null') . "\n"
            unless defined $x && !ref $x && looks_like_number($x);
        $sum += $x;
        $min = $x if !defined $min || $x < $min;
        $max = $x if !defined $max || $x > $max;
    }
    my $count = scalar @$item;
    return { count => $count, sum => $sum + 0, mean => $sum / $count, min => $min + 0, max => $max + 0 };
}

send_frame({ type => 'ready', pid => $$, runtime => "perl/$]" });
while (my $line = <STDIN>) {
    my $msg = eval { $json->decode($line) };
    if (!$msg || ref $msg ne 'HASH') { print STDERR "ignoring a line that is not a JSON object\n"; next }
    my $type = $msg->{type} // '';
    last if $type eq 'shutdown';
    next unless $type eq 'call';    # unknown messages are ignored
    my @results;
    for my $item (@{ $msg->{items} || [] }) {
        my $value = eval { summarise($item) };
        if ($@) {
            chomp(my $err = $@);
            push @results, { error => { type => 'ValueError', message => $err } };
        } else {
            push @results, { value => $value };
        }
    }
    send_frame({ type => 'result', id => $msg->{id}, results => \@results });
}
exit 0;
