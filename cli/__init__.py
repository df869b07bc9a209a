"""`werkbrug`: the command line for the people who use and operate werkbrug.

Caseworker (WerkSaam):
    werkbrug refer PERSON.json [--id-only]            submit a referral (personal data from a file, not the shell;
                                                      `refer --help` lists its fields, `werkbrug example person` one)
    werkbrug referrals [--status S]                   list referrals
    werkbrug status REFERRAL                          one referral at both parties, with every retour
      (municipality, support need, outcome, amounts and dates only to staff with a confidentiality statement at
      the party; others get states, ids and retours with a one-line note; `invoices` alike; `reconcile` needs one)
    werkbrug reconcile [REFERRAL]                     where the parties' records disagree (exit 2 if any)
    werkbrug approve REFERRAL QUOTE | reject REFERRAL QUOTE --reason CODE
Account manager (Heliomare):
    werkbrug accept REFERRAL | decline REFERRAL --reason CODE
    werkbrug quote REFERRAL --amount 4800.00 --start 2027-01-04 --weeks 26 [--advance 1920.00] [--id-only]
    werkbrug report publish YEAR [--correction]       the yearly report of a closed year to WerkSaam (art 6.2)
Job coach or account manager (Heliomare):
    werkbrug trajectory start REFERRAL --on D [--id-only]
    werkbrug trajectory progress REFERRAL --on D --phase P --status S
    werkbrug trajectory end REFERRAL --on D --outcome O [--contract-type C --hours-band H | --stop-reason R]
    werkbrug trajectories [--status S]
Privacy officer and operator:
    werkbrug log (--subject PSN | --trace ID | --referral ID | --activity URN --since T --until T)
    werkbrug trace <trace id | referral id> [--svg FILE]
    werkbrug invoices [--year Y] [--referral ID]      finance: invoices and totals (one trajectory's with --referral)
    werkbrug report YEAR [--svg FILE]                 the yearly report (art 6.2), as WerkSaam received it
    werkbrug subject-request submit --right R --identity-method M --verified-by STAFF BSN_FILE
    werkbrug subject-request show ID [--html FILE] | extend ID --reason R --told-at T | chase
    werkbrug subject-requests [--status S] [--at-risk]
    werkbrug health
    werkbrug dlq list [--service S] | dlq show MESSAGE_ID | dlq replay MESSAGE_ID
Cooperation (art 13, 16):
    werkbrug partner add ADDENDUM.json | partner remove NAME [--kind left|removed] | partner list
Confidentiality (art 8): every command names its actor (--as STAFF_ID or WERKBRUG_ACTOR), a member in force of
the staff register of the party whose service runs it, with a role that may give it (checked by the service)
    werkbrug staff list [--party P] | staff add STAFF --party P --role R [--from D] [--until D]
    werkbrug staff end STAFF --party P [--on D]          the party's identity administration keeps its register
    werkbrug confidentiality sign STAFF --party P --signed-on D [--ended-on D] | confidentiality list [--party P]
    werkbrug person REFERRAL [--service intake|offer]   the person's data: only with a statement; the read is logged
Breaches (art 12, GDPR art 33-34):
    werkbrug breach report --party P --detected-at T --cause C --data CAT --since T --until T [--service S]
    werkbrug breaches [--party P] [--overdue]
    werkbrug breach notify-ap ID --at T --reference REF | breach decide-subjects ID --inform/--no-inform --reason R
Files you write (no --as needed):
    werkbrug schema [person|addendum|corrections|staff-register]   a file's JSON Schema; without a name, the list
    werkbrug example NAME [--seed N]                  a valid example its command accepts as it is
Scripts:
    werkbrug wait REFERRAL --at SERVICE --for STATE | wait --report YEAR    until a service has what a step needs
Every command takes --json for scripts. A time typed without an offset is Dutch time (Europe/Amsterdam);
times shown in tables are Dutch time too.

It talks to the running services over RabbitMQ (the same AMQP_URL and WERKBRUG_NAMESPACE as they use).
Exit codes: 0 done, 1 nothing found, 2 refused or bad input, 3 a service did not answer or the broker is not
reachable, 4 the broker refused the connection (wrong user or password, a namespace without its virtual host, no
permission), 5 an unexpected failure. Whatever happens it prints one line per problem, never a traceback, and never
an error's own text (it could quote data).
"""
