# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers

=pod

=head1 NAME

PgktlsShim - run PostgreSQL's SSL test suite (src/test/ssl) through pgktls

=head1 SYNOPSIS

  PGKTLS_BIN=/path/to/pgktls prove --exec 'perl -I tests/pg-ssl -MPgktlsShim -I ... ' t/*.pl

=head1 DESCRIPTION

Loaded before the test script, so the replacements below are in place before the script
imports anything. It changes no test; it changes where the suite's client connections go:

=over

=item * Whenever the suite starts, restarts or reloads its PostgreSQL node (C<start>,
C<restart>, C<reload>, or C<pg_ctl start|restart> run as a command), the node's
postgresql.conf (with its includes) is read and pgktls is (re)started in front of it with
the same certificate, key, client CA, CRL, protocol versions, ciphers and passphrase
command, mapped onto pgktls's keys. pgktls listens on its own 127.0.0.1 port and reaches
the node over TLS at its port (C<tls_verify = "prefer">), so the node's C<hostssl> lines
and authentication methods apply to every connection as they would without pgktls.

=item * Every psql the suite runs whose connection string names C<hostaddr> (the suite's
TCP connections to the server under test) gets C<port=> of the pgktls in front of the node
at its port appended (libpq takes the last value of a keyword); one that names no node's
port ends the test script rather than reach PostgreSQL unseen.
Connections without C<hostaddr> (the suite's own set-up over the node's default
connection string) still go straight to PostgreSQL.

=item * A C<pg_ctl start|restart> command (the suite's "restart fails/succeeds" checks)
reports success only when PostgreSQL and pgktls agree: if one accepts the new
configuration and the other refuses it, the command reports the opposite of PostgreSQL's
result, so the check fails and says why.

=item * With C<PGKTLS_SHIM_IDENTITIES=1> (run.sh's "identity" mode), wherever the node
asks for client certificates (C<ssl_ca_file>), pgktls also gets a
C<tls_server_identity_map> that pairs each client certificate of the suite (its
F<ssl/client*.crt> with an unencrypted PEM key beside it) with itself, and a certificate
file that carries the same leaf with its chain (F<client+client_ca.crt>) with that chain:
pgktls then presents to PostgreSQL, for a client whose certificate it verified, the
certificate that client presented, as a deployment with upstream identities would.

=back

Keys this pgktls binary does not know (probed once with C<--check-config>) are left out of
its configuration, and a note says so: the checks that need them then fail and show up as
unexpected failures in tests/pg-ssl/run.sh.

One pgktls per node; its log is tmp_check/log/<test>_pgktls_<node>.log.

=cut

package PgktlsShim;

use strict;
use warnings;

use Cwd ();
use File::Basename qw(basename);
use IPC::Run ();
use PostgreSQL::Test::Cluster ();
use PostgreSQL::Test::Utils ();
use POSIX ();
use Test::More ();
use Time::HiRes qw(usleep);

my $PGKTLS = $ENV{PGKTLS_BIN} or die "PgktlsShim: PGKTLS_BIN is not set\n";
-x $PGKTLS or die "PgktlsShim: $PGKTLS is not executable\n";

# Per node (by PostgreSQL port): { node, port, pid, conf, log, ok }.
my %px_by_pgport;
my %key_known;
my $seq        = 0;
my $redirected = 0;

sub note_ { Test::More::note("pgktls shim: @_"); }

# key_supported(KEY, VALUE): whether this pgktls binary knows KEY (asked once per key).
sub key_supported
{
	my ($key, $value) = @_;
	return $key_known{$key} if exists $key_known{$key};
	my $probe = PostgreSQL::Test::Utils::tempdir() . "/probe-$key.toml";
	open my $fh, '>', $probe or die "PgktlsShim: $probe: $!";
	print $fh "[general]\n$key = $value\n";
	close $fh;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $PGKTLS, '--check-config', '-c', $probe ], '>', \$out, '2>', \$err);
	$key_known{$key} = ($out . $err) !~ /unknown key '\Q$key\E'/;
	note_("this pgktls has no '$key': left out, the checks that need it will fail")
	  unless $key_known{$key};
	return $key_known{$key};
}

# read_pg_conf(PGDATA): the node's settings, the last value of each name winning, as
# PostgreSQL reads them (postgresql.conf, its include directives, postgresql.auto.conf).
sub read_pg_conf
{
	my ($pgdata) = @_;
	my %set;
	my $read;
	$read = sub {
		my ($file, $depth) = @_;
		die "PgktlsShim: include nesting too deep at $file" if $depth > 10;
		open my $fh, '<', $file or return;
		while (my $line = <$fh>)
		{
			next if $line =~ /^\s*(#|$)/;
			next unless $line =~ /^\s*([A-Za-z_.]+)\s*=?\s*('((?:[^']|'')*)'|[^\s#]*)/;
			my ($name, $raw, $quoted) = (lc $1, $2, $3);
			my $value = defined $quoted ? $quoted =~ s/''/'/gr : $raw;
			if ($name eq 'include' || $name eq 'include_if_exists')
			{
				my $inc = $value =~ m{^/} ? $value : "$pgdata/$value";
				$read->($inc, $depth + 1);
				next;
			}
			$set{$name} = $value;
		}
		close $fh;
	};
	$read->("$pgdata/postgresql.conf", 0);
	$read->("$pgdata/postgresql.auto.conf", 0);
	return \%set;
}

# identity_map(DIR): write DIR/identities.conf for the suite's client certificates (see
# above) and return its path; undef when there is none. Written once per test script.
my $identity_map;

sub identity_map
{
	my ($dir) = @_;
	return $identity_map if defined $identity_map;
	my $ssl = Cwd::abs_path('ssl');
	my (%single, %chain);
	for my $crt (sort glob("$ssl/client*.crt"))
	{
		open my $fh, '<', $crt or next;
		my $pem = do { local $/; <$fh> };
		close $fh;
		my $n = () = $pem =~ /-----BEGIN CERTIFICATE-----/g;
		next unless $n;
		my $fp = `openssl x509 -noout -fingerprint -sha256 -in '$crt' 2>/dev/null`;
		next unless $fp =~ /=([0-9A-F:]+)/;
		$fp = $1;
		if ($n > 1)
		{
			# The same leaf with its chain: keep the longest chain.
			$chain{$fp} = [ $crt, $n ] if !$chain{$fp} || $chain{$fp}[1] < $n;
			next;
		}
		(my $key = $crt) =~ s/\.crt$/.key/;
		open my $kh, '<', $key or next;
		my $k = do { local $/; <$kh> };
		close $kh;
		next unless $k =~ /^-----BEGIN/ && $k !~ /ENCRYPTED/;
		$single{$fp} = [ $crt, $key ];
	}
	my $map = "$dir/identities.conf";
	open my $out, '>', $map or die "PgktlsShim: $map: $!";
	print $out "# PgktlsShim: each client certificate of the suite presented as itself\n";
	for my $fp (sort keys %single)
	{
		my ($crt, $key) = @{ $single{$fp} };
		$crt = $chain{$fp}[0] if $chain{$fp};
		print $out "sha256:$fp \"$crt\" \"$key\"\n";
	}
	close $out;
	note_("identity map $map: " . scalar(keys %single) . " client certificates");
	$identity_map = $map;
	return $identity_map;
}

sub toml_str
{
	my ($s) = @_;
	$s =~ s/(["\\])/\\$1/g;
	return "\"$s\"";
}

# pgktls_conf(NODE, PX): the pgktls configuration equivalent to the node's SSL settings,
# or undef when the node has ssl off (then there is nothing to terminate).
sub pgktls_conf
{
	my ($node, $px) = @_;
	my $pgdata = $node->data_dir;
	my $c      = read_pg_conf($pgdata);
	return undef unless ($c->{ssl} // 'off') =~ /^(on|true|yes|1)$/i;

	my $path = sub {
		my ($v) = @_;
		return $v =~ m{^/} ? $v : "$pgdata/$v";
	};
	my @g = (
		'host = "127.0.0.1"',
		"port = $px->{port}",
		'workers = 1',
		'log_level = "info"',
		'tls_certificate = ' . toml_str($path->($c->{ssl_cert_file} // 'server.crt')),
		'tls_private_key = ' . toml_str($path->($c->{ssl_key_file} // 'server.key')),
		# Every pg_hba.conf line of the suite is hostssl: plaintext clients are refused.
		'tls_client_required = true',
		# TLS to PostgreSQL, so hostssl lines and their methods apply; any certificate.
		'tls_verify = "prefer"');
	push @g, 'tls_min_version = ' . toml_str($c->{ssl_min_protocol_version})
	  if defined $c->{ssl_min_protocol_version};
	push @g, 'tls_max_version = ' . toml_str($c->{ssl_max_protocol_version})
	  if defined $c->{ssl_max_protocol_version};
	push @g, 'tls_ciphers = ' . toml_str($c->{ssl_ciphers})
	  if defined $c->{ssl_ciphers};
	push @g, 'tls_groups = ' . toml_str($c->{ssl_ecdh_curve})
	  if defined $c->{ssl_ecdh_curve} && $c->{ssl_ecdh_curve} ne '';

	# ssl_ca_file: PostgreSQL asks for a client certificate and checks one if it comes,
	# but lets a client without one in (pg_hba.conf decides). pgktls's equivalent is
	# tls_client_certificate = "optional"; without it, tls_client_ca_certificate alone
	# would refuse every client without a certificate, so it is left out.
	if (defined $c->{ssl_ca_file} && $c->{ssl_ca_file} ne ''
		&& key_supported('tls_client_certificate', '"optional"'))
	{
		push @g, 'tls_client_ca_certificate = ' . toml_str($path->($c->{ssl_ca_file}));
		push @g, 'tls_client_certificate = "optional"';
		# PostgreSQL loads both ssl_crl_file and ssl_crl_dir; pgktls takes one, a file or
		# a directory. The suite's directories hold the same lists as its files, and a
		# directory, when set, is the newer and more specific setting.
		my $crl =
		  defined $c->{ssl_crl_dir} && $c->{ssl_crl_dir} ne '' ? $c->{ssl_crl_dir}
		  : defined $c->{ssl_crl_file} && $c->{ssl_crl_file} ne '' ? $c->{ssl_crl_file}
		  :   undef;
		push @g, 'tls_client_crl = ' . toml_str($path->($crl))
		  if defined $crl && key_supported('tls_client_crl', '"/nonexistent"');
		push @g, 'tls_server_identity_map = ' . toml_str(identity_map($px->{dir}))
		  if $ENV{PGKTLS_SHIM_IDENTITIES}
		  && key_supported('tls_server_identity_map', '"/nonexistent"');
	}
	if (defined $c->{ssl_passphrase_command} && $c->{ssl_passphrase_command} ne ''
		&& key_supported('tls_private_key_passphrase_command', '"true"'))
	{
		push @g,
		  'tls_private_key_passphrase_command = ' . toml_str($c->{ssl_passphrase_command});
	}
	return join("\n",
		"# PgktlsShim: " . $node->name,
		'[general]', @g, '', '[upstream]',
		'host = "127.0.0.1"',
		'port = ' . $node->port, '');
}

sub px_stop
{
	my ($px) = @_;
	return unless $px->{pid};
	kill 'INT', $px->{pid};
	for (1 .. 100)
	{
		last if waitpid($px->{pid}, POSIX::WNOHANG()) != 0;
		usleep(50_000);
	}
	if (kill 0, $px->{pid})
	{
		kill 'KILL', $px->{pid};
		waitpid($px->{pid}, 0);
	}
	$px->{pid} = undef;
	return;
}

# px_start(PX, CONF): start pgktls with CONF; true when it reports ready.
sub px_start
{
	my ($px, $conf) = @_;
	my $n    = ++$seq;
	my $file = "$px->{dir}/pgktls-$n.toml";
	open my $fh, '>', $file or die "PgktlsShim: $file: $!";
	print $fh $conf;
	close $fh;
	# One log for the whole test; each start is marked in it.
	open my $log, '>>', $px->{log} or die "PgktlsShim: $px->{log}: $!";
	print $log "==== PgktlsShim: start $n with $file\n";
	close $log;
	my $pid = fork() // die "PgktlsShim: fork: $!";
	if ($pid == 0)
	{
		open STDIN,  '<',  '/dev/null';
		open STDOUT, '>>', $px->{log};
		open STDERR, '>>', $px->{log};
		exec $PGKTLS, '-c', $file or POSIX::_exit(127);
	}
	$px->{pid} = $pid;
	my $mark = "==== PgktlsShim: start $n ";
	for (1 .. 300)
	{
		open my $in, '<', $px->{log} or die;
		my $text = do { local $/; <$in> };
		close $in;
		my $mine = substr($text, rindex($text, $mark));
		return 1 if $mine =~ /ready:/;
		if (waitpid($pid, POSIX::WNOHANG()) == $pid)
		{
			$px->{pid} = undef;
			$mine =~ s/^/#   /mg;
			note_("pgktls refused the configuration $file:\n$mine");
			return 0;
		}
		usleep(50_000);
	}
	note_("pgktls did not get ready in 15 s ($file)");
	px_stop($px);
	return 0;
}

# sync_node(NODE): make the node's pgktls match its current SSL settings. Returns true when
# pgktls runs with them (or when the node has SSL off, so there is nothing to run).
sub sync_node
{
	my ($node) = @_;
	my $px = $px_by_pgport{ $node->port } //= {
		port => PostgreSQL::Test::Cluster::get_free_port(),
		dir  => PostgreSQL::Test::Utils::tempdir(),
		log  => $PostgreSQL::Test::Utils::log_path . '/'
		  . basename($0, '.pl') . '_pgktls_'
		  . $node->name . '.log',
	};
	my $conf = pgktls_conf($node, $px);
	if (!defined $conf)
	{
		px_stop($px);
		$px->{conf} = undef;
		return 1;
	}
	return 1 if $px->{pid} && defined $px->{conf} && $px->{conf} eq $conf;
	px_stop($px);
	$px->{conf} = $conf;
	return px_start($px, $conf);
}

sub node_by_datadir
{
	my ($dir) = @_;
	for my $node (@PostgreSQL::Test::Cluster::all_nodes)
	{
		return $node if $node->data_dir eq $dir;
	}
	return undef;
}

# redirect(CMD): CMD with its connection string pointed at pgktls where it should be.
sub redirect
{
	my ($cmd) = @_;
	return $cmd unless basename($cmd->[0]) eq 'psql';
	my @c = @$cmd;
	for my $i (0 .. $#c - 1)
	{
		next unless $c[$i] eq '-d' || $c[$i] eq '--dbname';
		my $cs = $c[ $i + 1 ];
		next unless $cs =~ /\bhostaddr=/;
		my @ports  = $cs =~ /\bport=(\d+)/g;
		my $pgport = @ports ? $ports[-1] : $ENV{PGPORT};
		my $px     = defined $pgport ? $px_by_pgport{$pgport} : undef;
		# A TCP connection that went straight to PostgreSQL would pass checks pgktls
		# never saw. (A node's pgktls that is not running still gets its connections:
		# they fail, as they should.)
		die "PgktlsShim: no pgktls for the TCP connection '$cs'\n" unless $px;
		$c[ $i + 1 ] = "$cs port=$px->{port}";
		$redirected++;
	}
	return \@c;
}

{
	no warnings 'redefine';

	my $run = \&IPC::Run::run;
	*IPC::Run::run = sub {
		return $run->(@_) unless ref $_[0] eq 'ARRAY';
		my $cmd = $_[0];
		if (basename($cmd->[0]) eq 'pg_ctl' && grep { /^(start|restart)$/ } @$cmd)
		{
			my ($i) = grep { $cmd->[$_] eq '-D' } 0 .. $#$cmd;
			my $node = defined $i ? node_by_datadir($cmd->[ $i + 1 ]) : undef;
			my $pg_ok = $run->(@_);
			return $pg_ok unless $node;
			my $px_ok = sync_node($node) ? 1 : 0;
			return $pg_ok if !!$pg_ok == !!$px_ok;
			Test::More::diag('pgktls shim: PostgreSQL '
				  . ($pg_ok ? 'accepted' : 'refused')
				  . ' this configuration but pgktls '
				  . ($px_ok ? 'accepted' : 'refused')
				  . ' it: reporting the opposite of PostgreSQL');
			return !$pg_ok;
		}
		my @args = @_;
		$args[0] = redirect($cmd);
		return $run->(@args);
	};

	for my $m (qw(start restart reload))
	{
		my $orig = PostgreSQL::Test::Cluster->can($m);
		no strict 'refs';
		*{"PostgreSQL::Test::Cluster::$m"} = sub {
			my $self = $_[0];
			my $ret  = $orig->(@_);
			sync_node($self) if defined $self->{_pid} || $m eq 'reload';
			return $ret;
		};
	}

	my $stop = PostgreSQL::Test::Cluster->can('stop');
	*PostgreSQL::Test::Cluster::stop = sub {
		my $px = $px_by_pgport{ $_[0]->port };
		px_stop($px) if $px;
		return $stop->(@_);
	};
}

END
{
	my $status = $?;
	# run.sh checks this line: a run that sent nothing through pgktls proves nothing.
	# (Through Test::More: the suite's modules send STDOUT to the test's log file.)
	Test::More::note("pgktls shim: $redirected connections through pgktls");
	px_stop($_) for values %px_by_pgport;
	$? = $status;
}

1;
