#!/usr/bin/env perl
# Perl's Mojo::UserAgent as a WebSocket client, the way Minion::Notifier's
# listener uses it, for Mercury's end-to-end tests: it opens COUNT
# connections to URL with one user agent, left at its defaults (it never
# pings; it closes a connection idle for 40 s), and prints one JSON object
# per event on stdout:
#   {"client":0,"open":true}  {"client":0,"text":"…"}
#   {"client":0,"close":{"code":1006,"reason":""}}  {"client":0,"error":"…"}
# Usage: perl mojows.pl URL [COUNT]
use Mojo::Base -strict;
use Mojo::IOLoop;
use Mojo::JSON qw(encode_json);
use Mojo::UserAgent;

my ($url, $count) = @ARGV;
die "usage: mojows.pl URL [COUNT]\n" unless $url;
$count ||= 1;
STDOUT->autoflush(1);

sub emit { print encode_json(shift), "\n" }

my $ua = Mojo::UserAgent->new;
for my $client (0 .. $count - 1) {
  $ua->websocket($url => sub {
    my ($ua, $tx) = @_;
    unless ($tx->is_websocket) {
      my $err = $tx->error;
      return emit({client => $client, error => $err ? $err->{message} : 'not a WebSocket handshake'});
    }
    emit({client => $client, open => \1});
    $tx->on(message => sub { emit({client => $client, text => $_[1]}) });
    $tx->on(finish  => sub {
      my ($tx, $code, $reason) = @_;
      emit({client => $client, close => {code => $code // 0, reason => $reason // ''}});
    });
  });
}
Mojo::IOLoop->start;
