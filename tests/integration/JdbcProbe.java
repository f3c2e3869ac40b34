// SPDX-License-Identifier: MIT
// Copyright (c) 2026 The pgktls developers
//
// pgjdbc through pgktls: verify-full TLS, a query, and a Statement.cancel().
// Usage: java -cp postgresql.jar JdbcProbe.java PORT CA_FILE   (one line per step)
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class JdbcProbe {
	public static void main(String[] args) throws Exception {
		String url = "jdbc:postgresql://localhost:" + args[0] + "/postgres";
		Properties p = new Properties();
		p.setProperty("user", "alice");
		p.setProperty("password", "alice-pw");
		p.setProperty("sslmode", "verify-full");
		p.setProperty("sslrootcert", args[1]);
		p.setProperty("connectTimeout", "10");
		try (Connection c = DriverManager.getConnection(url, p)) {
			try (Statement st = c.createStatement();
			     ResultSet rs = st.executeQuery("select current_user, 6 * 7")) {
				rs.next();
				System.out.println("query " + rs.getString(1) + " " + rs.getInt(2));
			}
			Statement st = c.createStatement();
			Thread t = new Thread(() -> {
				try {
					Thread.sleep(1000);
					st.cancel(); // a plaintext CancelRequest on a new connection
				} catch (Exception e) {
					System.out.println("cancel thread " + e);
				}
			});
			t.start();
			long t0 = System.nanoTime();
			String state = "none";
			try {
				st.execute("select pg_sleep(30)");
			} catch (SQLException e) {
				state = e.getSQLState();
			}
			long ms = (System.nanoTime() - t0) / 1000000;
			t.join();
			System.out.println("cancel " + state + " " + (ms < 10000 ? "quickly" : "after " + ms + " ms"));
			try (ResultSet rs = st.executeQuery("select 1")) {
				rs.next();
				System.out.println("after " + rs.getInt(1));
			}
		} catch (SQLException e) {
			System.out.println("error " + e.getSQLState() + " " + e.getMessage());
			System.exit(1);
		}
	}
}
