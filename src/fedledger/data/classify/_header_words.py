"""The header vocabulary of :mod:`.lexicon`: per group, its keywords in English, German, French, Spanish, Italian,
Portuguese and Dutch, and common abbreviations (general vocabulary, no column code of a particular data set)."""

from __future__ import annotations

# group -> keywords (normalized: lower case, accents folded, words of a phrase joined). Keywords of >= 6 letters, and
# those written with a trailing "~", also match as the head or tail of a longer token (compounds).
HEADER_KEYWORDS: dict[str, str] = {
    "name": """
        name names fullname firstname lastname surname surnames forename forenames givenname givennames familyname
        middlename maidenname legalname displayname contactname fname lname
        vorname vornamen nachname familienname geburtsname rufname
        nom noms prenom prenoms nomdefamille nomcomplet nomdenaissance
        nombre nombres apellido apellidos nombrecompleto
        nome cognome nominativo
        sobrenome nomecompleto
        naam voornaam voornamen achternaam voorletters tussenvoegsel volledigenaam
    """,
    "email": """
        email emails mail emailaddress mailaddress emailadresse mailadresse courriel adresseemail adressemail
        correo correoelectronico posta postaelettronica indirizzoemail enderecoeletronico emailadres mailadres
    """,
    "phone": """
        phone phones phonenumber telephone telephonenumber tel telno mobile mobilephone mobilenumber mobil mobiel
        cell cellphone cellular fax gsm msisdn contactnumber
        telefon~ telefonnummer handy handynummer mobilnummer rufnummer
        telephonique portable numerodetelephone
        telefono movil celular
        cellulare
        telefone
        telefoon telefoonnummer mobielnummer
    """,
    "national_id": """
        ssn sin nin nino socialsecurity socialsecuritynumber socialinsurance socialinsurancenumber nationalid
        nationalidentifier nationalidnumber nationalinsurance nationalinsurancenumber taxid taxnumber taxpayerid tin
        personalid personnummer personalausweisnummer
        sozialversicherung sozialversicherungsnummer rentenversicherungsnummer svnr steuerid steuernummer
        steueridentifikationsnummer identifikationsnummer ahv ahvnummer avs
        insee nir securitesociale numerosecu numerofiscal
        dni nie nif cif nss nuss curp rfc cuil cuit rut documentodeidentidad
        codicefiscale tesserasanitaria
        cpf cnpj rg nisp pis
        bsn burgerservicenummer sofinummer
        aadhaar aadhar pesel hetu henkilotunnus cpr
    """,
    "document": """
        passport passportnumber passportno driverslicense driverlicense drivinglicence drivinglicense licence license
        licensenumber idcard identitycard identitydocument vehicleregistration licenseplate licenceplate numberplate
        reisepass reisepassnummer ausweis personalausweis fuhrerschein kennzeichen
        passeport permisdeconduire cartedidentite immatriculation
        pasaporte licencia permisodeconducir matricula
        passaporto patente cartadidentita targa
        passaporte cnh carteira placa
        paspoort rijbewijs identiteitskaart kenteken
    """,
    "card": """
        creditcard creditcardnumber card cards cardnumber cardno ccnum ccnumber cc debitcard paymentcard
        kreditkarte kreditkartennummer karte kartennummer
        carte cartebancaire numerodecarte cartedecredit
        tarjeta tarjetadecredito
        carta cartadicredito
        cartao cartaodecredito
        kaart kaartnummer creditkaart
    """,
    "expiry": """
        expiry expiration expirydate expirationdate exp expdate expires validthru validthrough validuntil validto
        ablauf ablaufdatum verfall verfallsdatum gultigbis gultigkeit
        dateexpiration dateexp validite
        caducidad vencimiento fechadecaducidad fechadevencimiento
        scadenza validita datascadenza
        validade vencimento
        vervaldatum geldigtot geldigheid
    """,
    "bank_account": """
        iban bban bic swift account accounts acct accountnumber acctno accno bankaccount routing routingnumber
        sortcode aba
        konto kontonummer bankverbindung bankkonto
        compte comptebancaire rib
        cuenta cuentabancaria ccc
        conto contocorrente
        conta contabancaria
        rekening rekeningnummer bankrekening
    """,
    "address": """
        address addresses addr street streetaddress streetname homeaddress postaladdress mailingaddress
        shippingaddress billingaddress deliveryaddress addressline line1 line2 housenumber
        adresse anschrift strasse hausnummer wohnadresse postanschrift lieferadresse
        rue voie adressepostale adressedelivraison
        direccion domicilio calle
        indirizzo via spedizione
        endereco logradouro rua
        adres straat huisnummer
    """,
    "username": """
        username usernames loginname userid login handle nickname screenname alias accountname
        benutzername benutzerkennung anmeldename
        utilisateur nomdutilisateur identifiant pseudo
        usuario nombredeusuario
        nomeutente
        gebruikersnaam
    """,
    "network": """
        ip ipaddress ipaddr ipv4 ipv6 mac macaddress deviceid imei imsi hostname useragent cookie sessionid
        ipadresse adresseip direccionip indirizzoip enderecoip ipadres
    """,
    "id_word": """
        id ids identifier identification uuid guid key no nr nro num number nummer numero code codes codigo codice
        ref reference referenz referentie kennung kenn ident
    """,
    "person": """
        customer customers cust client clients patient patients user users employee employees emp staff member
        members person persons people subscriber applicant holder policyholder insured beneficiary citizen resident
        student candidate respondent participant contact owner
        kunde~ kunden patientin mitarbeiter mitarbeiterin personal versicherte versicherter bewerber mitglied
        salarie employe adherent assure personne
        cliente paciente empleado socio titular persona
        paziente dipendente utente assicurato
        funcionario segurado pessoa
        klant~ medewerker werknemer gebruiker lid persoon verzekerde
    """,
    "age": """
        age ages agegroup ageband ageyears alter lebensalter edad eta leeftijd idade
    """,
    "birth": """
        birth birthdate birthday birthplace dob born yob birthyear dateofbirth placeofbirth yearofbirth
        geburt~ geburtsdatum geburtstag geburtsjahr geburtsort
        naissance datedenaissance lieudenaissance
        nacimiento fechadenacimiento
        nascita datadinascita luogodinascita
        nascimento datadenascimento
        geboorte~ geboortedatum geboortejaar geboorteplaats
    """,
    "postcode": """
        zip zipcode zip5 postcode postcodes postal postalcode plz postleitzahl npa codepostal cap codicepostale cep
        codigopostal postnummer
    """,
    "sex": """
        sex gender geschlecht sexe genre sexo genero sesso genere geslacht
    """,
    "occupation": """
        occupation occupations job jobs jobtitle jobrole profession position employment employmentstatus
        employmenttype beruf berufsbezeichnung tatigkeit erwerbsstatus erwerbstatigkeit
        metier emploi poste situationprofessionnelle
        profesion ocupacion oficio puesto cargo situacionlaboral
        professione occupazione mansione impiego
        profissao ocupacao
        beroep functie
    """,
    "organization": """
        employer company organisation organization org firm business school university institution
        arbeitgeber firma unternehmen
        employeur entreprise societe
        empleador empresa
        datoredilavoro azienda ditta
        empregador
        werkgever bedrijf
    """,
    "department": """
        department dept division unit team abteilung bereich departement departamento reparto dipartimento ufficio
        afdeling
    """,
    "geo_area": """
        city town village municipality county state province region district canton country residence location
        stadt ort wohnort gemeinde kreis landkreis bezirk bundesland land kanton staat
        ville commune departement region pays lieu
        ciudad localidad municipio provincia comunidad pais estado
        citta comune regione paese stato
        cidade estado uf regiao distrito concelho
        stad plaats woonplaats gemeente provincie regio
    """,
    "nationality": """
        nationality nationalities citizenship nativecountry countryofbirth countryoforigin
        staatsangehorigkeit nationalitat herkunftsland
        nationalite citoyennete
        nacionalidad ciudadania
        nazionalita cittadinanza
        nacionalidade naturalidade
        nationaliteit
    """,
    "marital": """
        marital maritalstatus married civilstatus
        familienstand zivilstand
        etatcivil situationfamiliale situationmatrimoniale
        estadocivil
        statocivile
        burgerlijkestaat
    """,
    "education": """
        education educationlevel degree qualification qualifications schooling highestdegree diploma
        bildung bildungsabschluss abschluss schulabschluss ausbildung
        etudes niveaudetudes formation diplome
        educacion estudios niveleducativo formacion
        istruzione titolodistudio
        escolaridade instrucao formacao
        opleiding opleidingsniveau
    """,
    "household": """
        relationship household householdsize children kids dependents dependants spouse partner
        haushalt kinder
        menage enfants
        hogar hijos
        famiglia figli
        filhos
        huishouden kinderen
    """,
    "ethnicity": """
        race races ethnicity ethnic ethnicgroup ethnicorigin racialorigin ethnie ethnizitat origineethnique
        etnia etnico raza raca etniciteit
    """,
    "religion": """
        religion religions religious religiousaffiliation faith denomination confession church
        konfession religionszugehorigkeit glaube kirche
        religione confessione
        religiao crenca
        religie geloof kerkgenootschap
    """,
    "politics": """
        political politics politicalparty party partyaffiliation politicalaffiliation politicalopinion
        partei parteizugehorigkeit parti partido afiliacionpolitica partito partidaria filiacaopartidaria partij
    """,
    "union": """
        tradeunion unionmember unionmembership labourunion laborunion
        gewerkschaft gewerkschaftsmitglied syndicat syndique sindicato sindacato sindacale sindical vakbond
        vakbondslid
    """,
    "orientation": """
        sexualorientation sexuality sexuelleorientierung orientationsexuelle orientacionsexual orientamentosessuale
        orientacaosexual seksuelegeaardheid geaardheid
    """,
    "special": """
        genetic genetics genotype dna genome biometric biometrics fingerprint faceprint retina
        criminalrecord conviction convictions offence offense criminal vorstrafe vorstrafen strafregister
        casierjudiciaire antecedentespenales casellariogiudiziale antecedentescriminais strafblad
    """,
    "health": """
        diagnosis diagnoses diagnostic disease diseases condition conditions illness icd icd9 icd10 icdcode
        medication medications medicine medicines drug drugs prescription treatment therapy symptom symptoms allergy
        allergies surgery clinical medical health healthstatus comorbidity comorbidities chronic cancer tumor hiv
        hepatitis diabetes diabetic asthma depression pregnancy pregnant smoker smoking alcohol vaccination vaccine
        disability disabled handicap impairment
        diagnose~ krankheit erkrankung medikament medikation behandlung therapie befund symptome allergie
        gesundheit vorerkrankung raucher schwanger schwangerschaft behinderung schwerbehindert
        maladie pathologie traitement medicament symptome sante fumeur enceinte grossesse cim cim10 antecedents
        invalidite handicape
        diagnostico enfermedad patologia tratamiento medicamento medicacion sintoma alergia salud fumador
        embarazada embarazo cie cie10 antecedentes discapacidad
        diagnosi malattia trattamento terapia farmaco farmaci sintomi allergia salute fumatore incinta gravidanza
        disabilita invalidita
        doenca tratamento remedio sintoma saude fumante gravida gravidez cid deficiencia
        ziekte aandoening medicatie medicijn medicijnen symptomen gezondheid roker zwanger zwangerschap beperking
        handicap invaliditeit
    """,
    "health_measure": """
        bloodpressure bp systolic diastolic sbp dbp cholesterol chol ldl hdl triglycerides glucose bloodsugar fbs
        hba1c heartrate pulse bmi spo2 ecg~ ekg~ bloodtype bloodgroup creatinine hemoglobin
        blutdruck blutzucker cholesterin puls herzfrequenz blutgruppe
        tension tensionarterielle glycemie pouls frequencecardiaque groupesanguin
        presionarterial glucosa colesterol pulso frecuenciacardiaca gruposanguineo
        pressione pressionesanguigna pressionearteriosa glicemia colesterolo frequenzacardiaca gruppossanguigno
        pressaoarterial glicose frequenciacardiaca tiposanguineo
        bloeddruk bloedsuiker hartslag pols bloedgroep
    """,
    "body": """
        weight height bodyweight gewicht grosse korpergrosse poids taille peso altura estatura altezza lengte
    """,
    "finance": """
        income incomes salary salaries wage wages earnings pay payroll remuneration compensation bonus pension
        capitalgain capitalgains capitalloss capitallosses dividends networth wealth assets balance accountbalance
        debt debts loan loans mortgage creditscore creditrating arrears overdue bankruptcy insolvency grossincome
        netincome taxableincome
        einkommen~ gehalt~ lohn~ verdienst bezuge rente vermogen kontostand schulden kredit darlehen hypothek
        bonitat zahlungsruckstand
        revenu revenus salaire remuneration patrimoine solde dette dettes pret credit hypotheque impaye
        ingresos ingreso salario sueldo renta nomina patrimonio saldo deuda deudas prestamo credito hipoteca
        morosidad
        reddito redditi stipendio retribuzione pensione debito debiti prestito mutuo
        renda rendimento remuneracao aposentadoria divida dividas emprestimo financiamento inadimplencia
        inkomen salaris loon brutoloon nettoloon pensioen vermogen schuld schulden lening hypotheek krediet
        achterstand betalingsachterstand
    """,
    "money": """
        amount price prices cost costs fee fees total subtotal charge charges premium deductible discount tax vat
        revenue turnover sales invoiceamount
        betrag preis kosten gebuhr summe gesamt rabatt steuer mwst umsatz
        montant prix cout frais remise tva franchise
        importe precio coste costo tarifa descuento iva
        importo prezzo tariffa totale sconto
        valor preco custo desconto
        bedrag~ prijs tarief totaal korting btw
    """,
    "quantity": """
        quantity qty count counts bytes byte kb mb gb size length duration seconds secs ms minutes hours hrs days
        rate ratio percent pct percentage frequency freq volume usage views clicks visits sessions calls attempts
        items units
        menge anzahl stuck dauer stunden minuten tage anteil prozent volumen nutzung arbeitszeit
        quantite duree heures jours taux pourcentage
        cantidad duracion tamano horas minutos dias tasa porcentaje
        quantita durata dimensione ore minuti giorni tasso percentuale
        quantidade duracao tamanho percentual
        aantal hoeveelheid duur grootte uren dagen gebruik verbruik gesprekken
    """,
    "statistic": """
        sampleweight samplingweight surveyweight designweight weighting weightfactor expansionfactor
        gewichtung gewichtungsfaktor hochrechnungsfaktor ponderation poidsdesondage factordeexpansion
        pesomuestral pesocampionario pesoamostral weegfactor
    """,
    "event_time": """
        date dates time times timestamp datetime created createdat updated updatedat modified lastmodified changed
        deleted when since start end started ended period month year week day lastlogin lastseen
        datum zeit zeitpunkt zeitstempel erstellt erstelltam geandert aktualisiert angelegt beginn ende monat jahr
        heure horodatage cree creele modifie modifiele mois annee
        fecha hora creado modificado actualizado alta baja mes ano
        data ora creato modificato aggiornato mese anno
        criado modificado atualizado
        tijd tijdstip aangemaakt gewijzigd bijgewerkt laatst maand jaar
    """,
    "status": """
        status state stage phase outcome result
        zustand statut etat estado stato situacao situacion toestand
    """,
    "item": """
        product products item items article sku category categories type kind class brand model color colour plan
        tier tariff subscription package method paymentmethod channel
        produkt artikel kategorie typ marke modell farbe tarif abo abonnement
        produit categorie marque modele couleur forfait
        producto articulo categoria tipo marca modelo suscripcion
        prodotto articolo colore piano abbonamento pagamento
        produto artigo cor plano assinatura
        soort merk kleur bundel pakket
    """,
    "text": """
        comment comments note notes remark remarks description desc memo text message feedback review
        kommentar bemerkung bemerkungen notiz notizen beschreibung anmerkung
        commentaire remarque
        comentario comentarios nota notas observaciones descripcion
        commento commenti osservazioni descrizione
        observacao observacoes descricao
        opmerking opmerkingen notitie omschrijving beschrijving
    """,
    "score": """
        rating ratings score scores stars grade rank ranking level points loyalty
        bewertung punkte evaluation valoracion puntuacion valutazione punteggio voto avaliacao pontuacao
        beoordeling punten cijfer
    """,
    "tech": """
        protocol port ports packet packets src source dst dest destination srv server service connection
        connections conn session traffic request requests response error errors latency bandwidth throughput
        fragment fragments cmd cmds command shell attack intrusion alert alarm log logs http https tcp udp dns
        firewall
    """,
    "web": "url urls website homepage webpage link weburl webseite siteweb sitioweb sitoweb",
}
