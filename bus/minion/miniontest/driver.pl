#!/usr/bin/env perl
# Drives a real Minion (the PostgreSQL backend, as Debian's libminion-perl
# ships it; the SQLite one, libminion-backend-sqlite-perl, when DSN starts
# with sqlite:) for Mercury's bridge tests. Usage:
#
#   driver.pl DSN migrate             create Minion's tables; print the migration version
#   driver.pl DSN scenario            the audit scenario below; print the job ids as JSON
#   driver.pl DSN enqueue N [MS]      enqueue N "sleep" jobs of MS milliseconds; print their ids
#   driver.pl DSN work [JOBS]         run a worker until no job is waiting or running
#   driver.pl DSN perform             perform every waiting job in this process, one after
#                                     the other (Minion's perform_jobs_in_foreground: no fork
#                                     per job, so hundreds of jobs take seconds, not minutes)
#   driver.pl DSN lite                the SQLite scenario (no repair, no reset); print the job ids
#   driver.pl DSN check               enqueue one job, perform it, print its final state
use Mojo::Base -strict, -signatures;

use Minion;
use Mojo::JSON qw(encode_json);
use Sys::Hostname qw(hostname);
use Time::HiRes qw(usleep);

my ($dsn, $cmd, @args) = @ARGV;
die "usage: driver.pl DSN migrate|scenario|enqueue|work|check\n" unless $dsn && $cmd;

my $sqlite = $dsn =~ /^sqlite:/;
my $minion = $sqlite ? Minion->new(SQLite => $dsn) : Minion->new(Pg => $dsn);
$minion->backoff(sub ($retries) {0});    # retry at once: the tests do not wait for backoff
$minion->add_task(add      => sub ($job, $x, $y) { $job->finish({sum => $x + $y}) });
$minion->add_task(fail     => sub ($job, @args)  { die "boom\n" });
$minion->add_task(progress => sub ($job) { $job->note(progress => 50, stage => 'half'); $job->finish('done') });
$minion->add_task(sleep    => sub ($job, $ms) { usleep($ms * 1000); $job->finish($ms) });

sub out ($data) { print encode_json($data), "\n" }

if ($cmd eq 'migrate') {
  $minion->stats;    # the first query runs Minion's migrations
  my $db = $sqlite ? $minion->backend->sqlite : $minion->backend->pg;
  out {version => $db->migrations->active, minion => $Minion::VERSION};
}

elsif ($cmd eq 'check') {
  my $id = $minion->enqueue(add => [20, 22]);
  $minion->perform_jobs;
  out {id => $id, state => $minion->job($id)->info->{state}, result => $minion->job($id)->info->{result}};
}

elsif ($cmd eq 'enqueue') {
  my ($n, $ms) = (@args, 0, 0);
  my @ids = map { $minion->enqueue(sleep => [$ms + 0]) } 1 .. $n;
  out {ids => \@ids};
}

elsif ($cmd eq 'work') {
  my $jobs   = $args[0] || 4;
  my $worker = $minion->worker;
  $worker->status->{jobs}            = $jobs;
  $worker->status->{dequeue_timeout} = 0.1;
  $worker->unsubscribe('busy')->on(busy => sub { usleep 5000 });    # not a whole second while all slots are busy
  $worker->on(
    wait => sub ($w) {
      my $stats = $minion->stats;
      kill 'INT', $$ if $stats->{inactive_jobs} == 0 && $stats->{active_jobs} == 0;
    }
  );
  $worker->run;
  out {performed => $worker->status->{performed}};
}

elsif ($cmd eq 'perform') {
  $minion->perform_jobs_in_foreground;
  out {stats => $minion->stats};
}

elsif ($cmd eq 'scenario') {
  my %id;

  # Enqueue: arguments, priorities, notes, attempts, parents, a delay.
  $id{add}      = $minion->enqueue(add => [2, 3] => {priority => 5, notes => {origin => 'scenario'}});
  $id{child}    = $minion->enqueue(add => [1, 1] => {parents => [$id{add}], priority => 1});
  $id{flaky}    = $minion->enqueue(fail => ['x'] => {attempts => 2});
  $id{delayed}  = $minion->enqueue(add => [0, 0] => {delay => 3600});
  $id{progress} = $minion->enqueue(progress => []);

  # A real worker performs them: add and child finish (child after its
  # parent), flaky fails, is retried automatically and fails for good,
  # progress notes its progress and finishes.
  $minion->perform_jobs({queues => ['default']});

  # A manual retry into another queue, performed there: it fails again.
  $minion->job($id{flaky})->retry({queue => 'important'});
  $minion->perform_jobs({queues => ['important']});

  # The delayed job is removed before it ever runs.
  $minion->job($id{delayed})->remove;

  # A worker takes a job and vanishes; repair finds it missing, fails the
  # job ("Worker went away") and retries it automatically; then it runs.
  $id{lost} = $minion->enqueue(add => [5, 5] => {attempts => 2, queue => 'lost'});
  my $gone = $minion->worker->register;
  my $job  = $gone->dequeue(0, {queues => ['lost']}) or die "no job for the vanishing worker\n";
  $id{lost_worker} = $gone->id;
  $minion->backend->pg->db->query(q{UPDATE minion_workers SET notified = NOW() - INTERVAL '1 day' WHERE id = ?},
    $gone->id);
  $minion->missing_after(60)->repair;
  $minion->perform_jobs({queues => ['lost']});

  # A job in a queue no worker serves gets stuck.
  $id{stuck} = $minion->enqueue(add => [7, 7] => {queue => 'nobody'});
  usleep 20_000;
  $minion->stuck_after(0)->repair;

  # Repair purges the finished jobs.
  $minion->stuck_after(172800)->remove_after(0)->repair;

  # A note on a failed job, from outside any worker.
  $minion->job($id{flaky})->note(checked => 'yes');

  # Reset everything.
  $minion->reset({all => 1});

  out {ids => \%id, host => hostname, pid => $$};
}

elsif ($cmd eq 'lite') {
  my %id;
  $id{add}      = $minion->enqueue(add => [2, 3] => {priority => 5, notes => {origin => 'scenario'}});
  $id{child}    = $minion->enqueue(add => [1, 1] => {parents => [$id{add}], priority => 1});
  $id{flaky}    = $minion->enqueue(fail => ['x'] => {attempts => 2});
  $id{delayed}  = $minion->enqueue(add => [0, 0] => {delay => 3600});
  $id{progress} = $minion->enqueue(progress => []);
  $minion->perform_jobs({queues => ['default']});
  $minion->job($id{flaky})->retry({queue => 'important'});
  $minion->perform_jobs({queues => ['important']});
  $minion->job($id{delayed})->remove;
  $minion->job($id{flaky})->note(checked => 'yes');
  out {ids => \%id, host => hostname, pid => $$};
}

else { die "unknown command $cmd\n" }
