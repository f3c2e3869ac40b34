// SPDX-License-Identifier: MIT
// Copyright (c) 2026 The pgktls developers
//
// pgjdbc through several pgktls instances at once (t-ktls.sh): one JVM start for all of them,
// which matters under the kTLS VM's emulated CPU.
// Usage: java -cp postgresql.jar KtlsJdbc.java CA_FILE PORT...
// Connects to every port (verify-full, user alice), prints "PORT upstream VERSION CIPHER" and
// "PORT md5 HEX" (1 MB each way), then "ready", waits for a line on stdin (the test looks at
// the live connections meanwhile), runs one more query on each ("PORT after 1") and closes.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class KtlsJdbc {
	public static void main(String[] args) throws Exception {
		List<Connection> conns = new ArrayList<>();
		StringBuilder sb = new StringBuilder();
		for (int i = 0; sb.length() < 1000000; i++)
			sb.append(Integer.toHexString(i * 7919)).append(',');
		String big = sb.toString();
		try {
			for (int i = 1; i < args.length; i++) {
				Properties p = new Properties();
				p.setProperty("user", "alice");
				p.setProperty("password", "alice-pw");
				p.setProperty("sslmode", "verify-full");
				p.setProperty("sslrootcert", args[0]);
				p.setProperty("connectTimeout", "30");
				Connection c = DriverManager.getConnection(
					"jdbc:postgresql://localhost:" + args[i] + "/postgres", p);
				conns.add(c);
				try (Statement st = c.createStatement();
				     ResultSet rs = st.executeQuery("select version, cipher from pg_stat_ssl "
					     + "where pid = pg_backend_pid()")) {
					rs.next();
					System.out.println(args[i] + " upstream " + rs.getString(1) + " "
						+ rs.getString(2));
				}
				// 1 MB up, its md5 and 1 MB back down.
				try (PreparedStatement ps = c.prepareStatement("select md5(?), ?::text")) {
					ps.setString(1, big);
					ps.setString(2, big);
					try (ResultSet rs = ps.executeQuery()) {
						rs.next();
						System.out.println(args[i] + " md5 " + rs.getString(1)
							+ (big.equals(rs.getString(2)) ? " echo-ok" : " echo-BAD"));
					}
				}
			}
			System.out.println("ready");
			new BufferedReader(new InputStreamReader(System.in)).readLine();
			for (int i = 0; i < conns.size(); i++) {
				try (Statement st = conns.get(i).createStatement();
				     ResultSet rs = st.executeQuery("select 1")) {
					rs.next();
					System.out.println(args[i + 1] + " after " + rs.getInt(1));
				}
				conns.get(i).close();
			}
		} catch (SQLException e) {
			System.out.println("error " + e.getSQLState() + " " + e.getMessage());
			System.exit(1);
		}
	}
}
